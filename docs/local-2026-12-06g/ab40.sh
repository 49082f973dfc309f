#!/bin/bash
# Stop 50: the default recovery (40 steps) on stop 46's fisher + mix slice, the head loss after (c0a8cf2) and before (3ca1dbe),
# one after the other (in that order) on the same warm machine, each alone under the shared lock; then WikiText-2 on 10 windows of both.
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs50
git -C /work/main show 3ca1dbe:passes/recover_loss.py > /tmp/old_recover_loss.py
/usr/bin/time -f "%e s %M KB" andactl recover /work/runs46/fmix --full -o fmix_rec40 > rec40.out 2> rec40.err
/usr/bin/time -f "%e s %M KB" python /work/main/docs/local-2026-12-06g/oldloss_run.py /tmp/old_recover_loss.py \
    recover /work/runs46/fmix --full -o fmix_rec40_old > rec40_old.out 2> rec40_old.err
andactl eval fmix_rec40_old fmix_rec40 --tasks wikitext2 --limit 10 --dtype float32 --format json > ppl10_rec40.json 2> ppl10_rec40.err
# 10-step probes (same pairing; --no-checkpoint only with the new loss):
#   python oldloss_run.py /tmp/old_recover_loss.py recover /work/runs46/fmix --full --steps 10 --eval-every 100 -o ck_old
#   andactl recover /work/runs46/fmix --full --steps 10 --eval-every 100 [--no-checkpoint] -o ck
