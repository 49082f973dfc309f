#!/bin/bash
# The final code's `--teacher-topk 64` recovery (split heads in the top-k phase and training, weight casts held),
# alone under the shared lock: memory against the --dry-run estimate (fmix_topk.dry7).
set -e
D=$(dirname $0)
flock /work/heavy.lock /usr/bin/time -f "%e s wall, %M KB max RSS" andactl recover /work/runs46/fmix --full --teacher-topk 64 -o /work/runs51/tk40_final --overwrite > $D/topk_final.log 2>&1
