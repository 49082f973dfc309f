#!/bin/bash
# stop 47: held-out check per point (fisher_check.py) on the fisher+mix slice, then 10-window eval
cd /work/main && source /work/env.sh && source .venv/bin/activate
OUT=/work/runs47/fchk
rm -rf $OUT
/usr/bin/time -v python /work/s47/fisher_check.py smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 \
  --basis fisher --cal-data mix -o $OUT 2> /work/s47/fchk.err
andactl eval $OUT --tasks wikitext2 --limit 10 --dtype float32 --output_path /work/s47/fchk_ppl10.json
