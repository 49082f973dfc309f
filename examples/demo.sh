#!/usr/bin/env bash
# `make demo`: the main job on the default model (SmolLM2-135M-Instruct), sized to finish in about
# three minutes on a 2-core CPU with AMX (bf16):
#   slice 25% (64x512 calibration tokens) -> short recovery (distillation from the dense model
#   into every linear weight, 30 steps x 4 x 128 tokens) -> INT4 weights (GPTQ on quantize's
#   default 8 x 512 calibration tokens, asymmetric groups of 64) + Anda activations at fixed bits
#   (7 8 9 7; `andactl quantize` without --bits searches, slower)
#   -> pack -> inspect -> perplexity side by side -> a few generated tokens from the final model.
# Figures are for a demo (small calibration, a short recovery, 4 windows of 512 tokens); see
# docs/RECOVER.md and the README for full-size runs.
set -euo pipefail
OUT=${1:-runs/demo}
A=${ANDACTL:-.venv/bin/andactl}
mkdir -p "$OUT"
SECONDS=0
$A env
$A slice smollm2-135m --ratio 0.25 --cal-samples 64 --cal-seqlen 512 -o "$OUT/sliced" --overwrite
$A recover "$OUT/sliced" --full --steps 30 --batch-size 4 --seqlen 128 --held-out 2 --eval-every 30 \
   -o "$OUT/recovered" --overwrite
$A quantize "$OUT/recovered" --bits 7 8 9 7 -o "$OUT/packed" --overwrite
$A inspect "$OUT/packed"
$A eval smollm2-135m "$OUT/sliced" "$OUT/recovered" "$OUT/packed" --tasks wikitext2 --seqlen 512 --limit 4 \
   --output_path "$OUT/eval.json"
$A generate "$OUT/packed" --prompt "The capital of France is" --max-new-tokens 16
echo "demo: ${SECONDS} s in all" >&2
