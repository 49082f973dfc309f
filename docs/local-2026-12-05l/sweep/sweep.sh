#!/bin/bash
# The SmolLM2 sweep of docs/SWEEP.md, re-run on stop 41's code (one table for the sliced head and embedding).
cd /work/main && source /work/env.sh && source .venv/bin/activate
rm -rf /work/s41/sweep
/usr/bin/time -v andactl sweep smollm2-135m -o /work/s41/sweep --ratios 0,0.25 --recover none,kd --tolerances 0.01,0.05 \
    --weight-methods gptq --windows 8 --max-evals 16 --budget energy --format json > /work/s41/sweep.json 2> /work/s41/sweep.err
echo rc=$? >> /work/s41/sweep.err
