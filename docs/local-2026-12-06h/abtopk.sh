#!/bin/bash
# `--teacher-topk 64` recovery, torch float32 head products (NOSPLIT=1) vs split_gemm, one after the other,
# each alone under the shared lock (the teacher's top-k phase computes its logits with split_gemm too);
# then --dry-run of both default commands on the idle machine (the time constant's refit).
set -e
FMIX=/work/runs46/fmix; OUT=/work/runs51; mkdir -p $OUT
D=$(dirname $0)
for v in 1 ""; do
  tag=$([ -n "$v" ] && echo torch || echo split)
  NOSPLIT=$v flock /work/heavy.lock /usr/bin/time -f "%e s wall, %M KB max RSS" python $D/ab.py recover $FMIX --full --teacher-topk 64 -o $OUT/tk40_$tag --overwrite > $D/abtopk_$tag.log 2>&1
  cp $OUT/tk40_$tag/report.json $D/abtopk_$tag.report.json
done
flock /work/heavy.lock andactl recover $FMIX --full --dry-run -o $OUT/dry > $D/dry_inproc.txt 2>&1
flock /work/heavy.lock andactl recover $FMIX --full --teacher-topk 64 --dry-run -o $OUT/dry > $D/dry_topk.txt 2>&1
