#!/bin/bash
# Stop 59, AMD EPYC Zen 4: the sweep's new recovery axis value `full` on the real model, beside `none`
# (25% slicing, the sweep's default 8x512 calibration, GPTQ, Anda at 1%, 4 WikiText-2 windows of 2048).
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
rm -rf /work/runs59/sweep_full
flock /work/heavy.lock /usr/bin/time -v andactl sweep smollm2-135m -o /work/runs59/sweep_full --ratios 0,0.25 \
  --recover none,full --tolerances 0.01 --windows 4 --format json > sweep_full.json 2> sweep_full.err
echo done > sweep_full.done
