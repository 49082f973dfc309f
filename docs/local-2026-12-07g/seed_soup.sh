#!/bin/bash
# Stop 59, AMD EPYC Zen 4: a seed soup. The default recovery (40 steps, --full) of stop 56's slice
# (/work/runs56/fmix) at seeds 43 and 44 (--seed picks the alpaca rows and their order), then the
# uniform mean of the weights with stop 56's seed-42 run (/work/runs56/def) in soup.py. Each step alone
# under the shared lock; evaluated as stop 58's recoveries.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs59; F=/work/runs56/fmix
for s in 43 44; do
  v=s$s
  rm -rf $R/$v
  flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --seed $s -o $R/$v > $v.out 2> $v.err
  cp $R/$v/report.json $v.report.json
  flock /work/heavy.lock andactl eval $R/$v --tasks wikitext2 --limit 10 --dtype float32 --format json > ${v}_ppl.json 2> ${v}_ppl.err
done
python soup.py $R/soup3 /work/runs56/def $R/s43 $R/s44 2> soup3.err
./soup_eval.sh soup3
for s in 43 44; do
  v=s$s
  flock /work/heavy.lock andactl eval $R/$v --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > ${v}_zs.json 2> ${v}_zs.err
done
echo done > seed_soup.done
