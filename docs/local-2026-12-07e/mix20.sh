#!/bin/bash
# Stop 57, AMD EPYC Zen 4: `recover --full --train-data mix --minutes 20` (half alpaca, half text
# sampled from the dense model; the Xeon's best perplexity, stop 53) on stop 56's slice, beside
# stop 56's alpaca run of the same budget (/work/runs56/alpaca20). Each step alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs57; F=/work/runs56/fmix
rm -rf $R/mix20
flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --train-data mix --minutes 20 --eval-every 50 -o $R/mix20 > mix20.out 2> mix20.err
cp $R/mix20/report.json mix20.report.json
flock /work/heavy.lock andactl eval $R/mix20 --tasks wikitext2 --limit 10 --dtype float32 --format json > mix20_ppl.json 2> mix20_ppl.err
flock /work/heavy.lock andactl eval $R/mix20 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > mix20_zs.json 2> mix20_zs.err
flock /work/heavy.lock andactl eval $R/mix20 --tasks wikitext2 --dtype float32 --format json > mix20_pplfull.json 2> mix20_pplfull.err
echo done > mix20.done
