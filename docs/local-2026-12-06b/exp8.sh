#!/bin/bash
# stop 44 exp8: SLICE (a `slice --basis fisher` artifact) and REC (its `recover --full`): zero-shot, full
# WikiText-2, then the 200-step recovery
SLICE=$1; REC=$2; TAG=$3
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
andactl eval $REC --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > /work/s44/${TAG}_zs.json 2>/dev/null
date
andactl eval $REC --tasks wikitext2 --dtype float32 --format json > /work/s44/${TAG}_full.json 2>/dev/null
date
/usr/bin/time -v andactl recover $SLICE --full --steps 200 --eval-every 20 -o ${REC}200 2> /work/s44/${TAG}_rec200.err | tail -1
date
andactl eval ${REC}200 --tasks wikitext2 --limit 10 --dtype float32 --format json > /work/s44/${TAG}_200_ppl.json 2>/dev/null
date
andactl eval ${REC}200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > /work/s44/${TAG}_200_zs.json 2>/dev/null
date
