#!/bin/bash
# v1 (commit-less working tree at 05:46): KL measured at the uniform width only, widths by a variance-proportional model
# The loss slicing schedule against SliceGPT's uniform widths, SmolLM2-135M at 25%, 16x1024 alpaca
# calibration (the uniform artifact: /work/runs/chain/sliced, same settings). One job at a time.
set -x
cd /work/main && source /work/env.sh && source .venv/bin/activate
OUT=docs/local-2026-12-05d
/usr/bin/time -v python -m andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 \
  --schedule loss -o /work/runs/r33/loss --overwrite > $OUT/slice_loss.out 2> $OUT/slice_loss.err
python -m andactl eval /work/runs/r33/loss /work/runs/chain/sliced --tasks wikitext2 --limit 10 --dtype float32 \
  > $OUT/eval10_loss_uniform.out 2> $OUT/eval10_loss_uniform.err
