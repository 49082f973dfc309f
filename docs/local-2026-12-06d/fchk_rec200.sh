#!/bin/bash
# stop 47: 200-step recovery of the held-out-checked slice; 10 windows and zero-shot (500 each)
cd /work/main && source /work/env.sh && source .venv/bin/activate
rm -rf /work/runs47/fchk_rec200
/usr/bin/time -v andactl recover /work/runs47/fchk --full --steps 200 --eval-every 20 -o /work/runs47/fchk_rec200 2> /work/s47/fchk_rec200.err
andactl eval /work/runs47/fchk_rec200 --tasks wikitext2 --limit 10 --dtype float32 --output_path /work/s47/fchk_rec200_ppl10.json
andactl eval /work/runs47/fchk_rec200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path /work/s47/fchk_rec200_zs.json
