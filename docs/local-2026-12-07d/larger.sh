#!/bin/bash
# Stop 56: the Zen 4 --minutes 20 model on the larger samples (full piqa and arc_easy, 2000
# hellaswag documents), as stop 55's larger.sh did for the Xeon's; alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs56
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > alpaca20_zsfull.json 2> alpaca20_zsfull.err
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > alpaca20_hs2000.json 2> alpaca20_hs2000.err
echo done > larger.done
