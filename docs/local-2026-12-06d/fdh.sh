#!/bin/bash
# stop 47: fisher search on the dense model's H (fisher_denseH.py), fisher+mix slice, then 10-window eval
cd /work/main && source /work/env.sh && source .venv/bin/activate
OUT=/work/runs47/fdh
rm -rf $OUT
/usr/bin/time -v python /work/s47/fisher_denseH.py smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 \
  --basis fisher --cal-data mix -o $OUT 2> /work/s47/fdh.err
andactl eval $OUT --tasks wikitext2 --limit 10 --dtype float32 --output_path /work/s47/fdh_ppl10.json
