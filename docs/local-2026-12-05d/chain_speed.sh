#!/bin/bash
# Decode speed of the whole chain (25% sliced -> recover --full --steps 200 -> quantize defaults,
# stop 32's artifact) beside dense, the recovered float model and Q1: the headline command's settings.
cd /work/main && source /work/env.sh && source .venv/bin/activate
for i in 1 2; do
  python -m andactl bench smollm2-135m /work/runs/r32/full200 /work/runs/r32/full200_q1 /work/runs/hl/q1 \
    --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 > docs/local-2026-12-05d/chain_speed_$i.txt 2> docs/local-2026-12-05d/chain_speed_$i.err
done
