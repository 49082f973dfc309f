#!/bin/bash
# Stop 40: zero-shot of the one-table 40-step recovery (stop 38's untied one: 60.4 / 37.2 / 33.2, mean 43.60)
set -x
source /work/env.sh
cd /work/main
/usr/bin/time -f %e_s_%M_KB .venv/bin/andactl eval /work/runs40/rec --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > /work/runs40/zs_rec.json
echo done
