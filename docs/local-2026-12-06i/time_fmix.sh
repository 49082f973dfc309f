#!/bin/bash
# dry-run estimate vs measured, back to back, alone under the shared lock
source /work/env.sh; source /work/main/.venv/bin/activate; cd /work/main
F=/work/runs46/fmix; R=/work/runs52
for mode in inproc topk; do
  extra=""; [ $mode = topk ] && extra="--teacher-topk 64"
  flock /work/heavy.lock andactl recover $F --full $extra --dry-run --format json -o $R/x > $R/dry_$mode.json 2> $R/dry_$mode.err
  rm -rf $R/rec_$mode
  flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full $extra -o $R/rec_$mode > $R/rec_$mode.out 2> $R/rec_$mode.err
done
echo done
