#!/bin/bash
# stop 47: grouped (first token / rest) K-FAC estimate for the fisher+mix slice, then 10-window eval
set -e
cd /work/main && source /work/env.sh && source .venv/bin/activate
OUT=/work/runs47/fg
rm -rf $OUT
/usr/bin/time -v python /work/s47/fisher_groups.py smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 \
  --basis fisher --cal-data mix -o $OUT 2> /work/s47/fg.err
andactl eval $OUT --tasks wikitext2 --limit 10 --dtype float32 -o /work/s47/fg_ppl10.json
