#!/bin/bash
# Stop 54: the 325-step alpaca model (min20.sh) on the larger zero-shot samples: full piqa and arc_easy, 2000 hellaswag.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs54
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > alpaca20_zsfull.json 2> alpaca20_zsfull.err
flock /work/heavy.lock andactl eval $R/alpaca20 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > alpaca20_hs2000.json 2> alpaca20_hs2000.err
echo done
