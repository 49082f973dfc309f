#!/bin/bash
# stop 47: full WikiText-2 test set (float32) of the held-out-checked slice's 200-step recovery
cd /work/main && source /work/env.sh && source .venv/bin/activate
/usr/bin/time -v andactl eval /work/runs47/fchk_rec200 --tasks wikitext2 --dtype float32 --output_path /work/s47/fchk_rec200_full.json
