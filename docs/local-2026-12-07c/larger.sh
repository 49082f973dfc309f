#!/bin/bash
# Stop 55: the 343-step alpaca model (min20.sh) on the larger zero-shot samples: full piqa and arc_easy, 2000 hellaswag.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
until grep -q '^done' min20.log; do sleep 20; done
R=/work/runs55
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > alpaca20_zsfull.json 2> alpaca20_zsfull.err
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > alpaca20_hs2000.json 2> alpaca20_hs2000.err
echo done
