#!/bin/bash
# Stop 55: --minutes 20 with the step timed in a child process (the estimate scaled by it, 5% of the
# budget in reserve), on stop 46's fisher + mix slice: alpaca, then mix; each evaluated on 10
# WikiText-2 windows, 500 documents per zero-shot task and the full WikiText-2 test set. Every step
# alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs55; F=/work/runs46/fmix
for t in alpaca mix; do
  rm -rf $R/${t}20
  flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --train-data $t --minutes 20 --eval-every 50 -o $R/${t}20 > ${t}20.out 2> ${t}20.err
  cp $R/${t}20/report.json ${t}20.report.json
  flock /work/heavy.lock andactl eval $R/${t}20 --tasks wikitext2 --limit 10 --dtype float32 --format json > ${t}20_ppl.json 2> ${t}20_ppl.err
  flock /work/heavy.lock andactl eval $R/${t}20 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > ${t}20_zs.json 2> ${t}20_zs.err
  flock /work/heavy.lock andactl eval $R/${t}20 --tasks wikitext2 --dtype float32 --format json > ${t}20_pplfull.json 2> ${t}20_pplfull.err
done
echo done
