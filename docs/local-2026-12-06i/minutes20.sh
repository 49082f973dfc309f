#!/bin/bash
# Stop 52: recover --minutes 20 on stop 46's fisher + mix slice: the steps chosen, the wall time it took, and the model's
# WikiText-2 (10 windows) and zero-shot figures. Alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs52
rm -rf $R/min20
flock /work/heavy.lock /usr/bin/time -v andactl recover /work/runs46/fmix --full --minutes 20 --eval-every 50 -o $R/min20 > min20.out 2> min20.err
cp $R/min20/report.json min20.report.json
flock /work/heavy.lock andactl eval $R/min20 --tasks wikitext2 --limit 10 --dtype float32 --format json > min20_ppl.json 2> min20_ppl.err
flock /work/heavy.lock andactl eval $R/min20 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > min20_zs.json 2> min20_zs.err
echo done
