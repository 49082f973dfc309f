#!/bin/bash
# stop 44 exp9: the whole chain on the fisher 200-step recovery: quantize at its defaults, eval
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
/usr/bin/time -v andactl quantize /work/runs44/fisher_rec200 -o /work/runs44/fisher_q200 2> /work/s44/fisher_q200.err | tail -2
date
andactl eval /work/runs44/fisher_q200 --tasks wikitext2 --limit 10 --dtype float32 --format json > /work/s44/fisher_q200_ppl.json 2>/dev/null
date
andactl eval /work/runs44/fisher_q200 --tasks wikitext2 --dtype float32 --format json > /work/s44/fisher_q200_full.json 2>/dev/null
date
