#!/usr/bin/env bash
# `make demo`: the main job on the default model (SmolLM2-135M-Instruct) with small calibration
# settings so it finishes in a few minutes on a 2-core CPU:
#   slice 25% -> short recovery (distillation from the dense model) -> INT4 (RTN) + Anda search
#   (energy budget, 1% tolerance) -> pack -> eval side by side.
set -euo pipefail
OUT=${1:-runs/demo}
A=.venv/bin/andactl
mkdir -p "$OUT"
$A env
$A slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 512 -o "$OUT/sliced" --overwrite
$A recover "$OUT/sliced" --steps 12 --seqlen 128 -o "$OUT/recovered" --overwrite
$A quantize "$OUT/recovered" --budget energy --tolerance 0.01 --weight-method rtn \
   --cal-samples 8 --cal-seqlen 512 --max-evals 12 --fallback-w4a16 -o "$OUT/packed" --overwrite
$A inspect "$OUT/packed"
$A eval smollm2-135m "$OUT/sliced" "$OUT/recovered" "$OUT/packed" --tasks wikitext2 --limit 4 --output_path "$OUT/eval.json"
