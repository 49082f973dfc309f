#!/bin/bash
# Stop 53: recover's self text with the inverse-CDF sampler and 64-row batches. The sampler alone
# (bench_sampling.py), the --dry-run estimate against the measured default run, then the 20-minute budget
# on self text (stop 46's fisher + mix slice, as stop 52's alpaca run), each evaluated as stop 52's.
# Every step alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs53
F=/work/runs46/fmix
flock /work/heavy.lock python /work/main/benchmarks/bench_sampling.py > bench_sampling.md 2> bench_sampling.err
flock /work/heavy.lock andactl recover $F --full --train-data self --dry-run -o $R/self40 > self40.dry.json 2> self40.dry.err
rm -rf $R/self40
flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --train-data self -o $R/self40 > self40.out 2> self40.err
cp $R/self40/report.json self40.report.json
flock /work/heavy.lock andactl eval $R/self40 --tasks wikitext2 --limit 10 --dtype float32 --format json > self40_ppl.json 2> self40_ppl.err
flock /work/heavy.lock andactl recover $F --full --train-data self --minutes 20 --eval-every 50 --dry-run -o $R/self20 > self20.dry.json 2> self20.dry.err
rm -rf $R/self20
flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --train-data self --minutes 20 --eval-every 50 -o $R/self20 > self20.out 2> self20.err
cp $R/self20/report.json self20.report.json
flock /work/heavy.lock andactl eval $R/self20 --tasks wikitext2 --limit 10 --dtype float32 --format json > self20_ppl.json 2> self20_ppl.err
flock /work/heavy.lock andactl eval $R/self20 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > self20_zs.json 2> self20_zs.err
echo done
