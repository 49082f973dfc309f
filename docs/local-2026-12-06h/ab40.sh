#!/bin/bash
# Default recovery, torch float32 head products (NOSPLIT=1) vs split_gemm on AMX-BF16 tiles, one after the
# other on the same warm machine, each alone under the shared lock; then 10 WikiText-2 windows of each.
# FMIX = stop 46's `andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix`
set -e
FMIX=/work/runs46/fmix; OUT=/work/runs51; mkdir -p $OUT
D=$(dirname $0)
for v in 1 ""; do
  tag=$([ -n "$v" ] && echo torch || echo split)
  NOSPLIT=$v flock /work/heavy.lock /usr/bin/time -f "%e s wall, %M KB max RSS" python $D/ab.py recover $FMIX --full -o $OUT/rec40_$tag --overwrite > $D/ab40_$tag.log 2>&1
  cp $OUT/rec40_$tag/report.json $D/ab40_$tag.report.json
done
flock /work/heavy.lock andactl eval $OUT/rec40_torch $OUT/rec40_split --tasks wikitext2 --limit 10 --dtype float32 > $D/ab40_ppl.txt 2>$D/ab40_ppl.log
