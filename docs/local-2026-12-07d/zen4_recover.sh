#!/bin/bash
# Stop 56, AMD EPYC Zen 4 (AVX-512 + BF16 + VNNI, no AMX): stop 46's slice recipe (fisher basis, mix
# calibration, 16x1024) re-sliced here; the default recovery (40 steps) and `--minutes 20` (timed on
# its own step) on it; each evaluated on 10 WikiText-2 windows and 500 documents per zero-shot task,
# the 20-minute model also on the full WikiText-2 test set. Every step alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs56; F=$R/fmix
rm -rf $F $R/def $R/alpaca20
flock /work/heavy.lock /usr/bin/time -v andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix -o $F > slice.out 2> slice.err
for v in def alpaca20; do
  flag=""; [ $v = alpaca20 ] && flag="--minutes 20 --eval-every 50"
  flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full $flag -o $R/$v > $v.out 2> $v.err
  cp $R/$v/report.json $v.report.json
  flock /work/heavy.lock andactl eval $R/$v --tasks wikitext2 --limit 10 --dtype float32 --format json > ${v}_ppl.json 2> ${v}_ppl.err
  flock /work/heavy.lock andactl eval $R/$v --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > ${v}_zs.json 2> ${v}_zs.err
done
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks wikitext2 --dtype float32 --format json > alpaca20_pplfull.json 2> alpaca20_pplfull.err
echo done > zen4_recover.done
