#!/usr/bin/env bash
# `make demo`: the main job on the default model (SmolLM2-135M-Instruct), sized to finish in about
# six minutes on a 2-core CPU with AMX (bf16):
#   slice 25% (64x512 calibration tokens) -> short recovery (distillation from the dense model
#   into every linear weight, 30 steps x 4 x 128 tokens) -> INT4 weights (GPTQ on quantize's
#   default 8 x 512 calibration tokens, asymmetric groups of 64) + Anda activations at fixed bits
#   (7 8 9 7; `andactl quantize` without --bits searches, slower)
#   -> pack -> inspect; beside it the unsliced path (INT4 + Anda at the default search's bits
#   [8 7 8 8] straight from the dense model: the artifact worth keeping for a model this small)
#   and the pruned path (20% of every layer's MLP neurons removed: 0.88x the dense parameters,
#   fewer than the 25% slice's 0.89x -> the same short recovery -> INT4 + Anda at [8 7 8 8])
#   -> perplexity of all seven side by side -> a few generated tokens from the three final models.
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
$A quantize smollm2-135m --bits 8 7 8 8 -o "$OUT/quantized" --overwrite
$A prune smollm2-135m --ratio 0.2 --cal-samples 16 --cal-seqlen 512 -o "$OUT/pruned" --overwrite
$A recover "$OUT/pruned" --full --steps 30 --batch-size 4 --seqlen 128 --held-out 2 --eval-every 30 \
   -o "$OUT/pruned_recovered" --overwrite
$A quantize "$OUT/pruned_recovered" --bits 8 7 8 8 -o "$OUT/pruned_packed" --overwrite
$A eval smollm2-135m "$OUT/sliced" "$OUT/recovered" "$OUT/packed" "$OUT/quantized" "$OUT/pruned_recovered" \
   "$OUT/pruned_packed" --tasks wikitext2 --seqlen 512 --limit 4 --output_path "$OUT/eval.json"
for M in packed quantized pruned_packed; do
  $A generate "$OUT/$M" --prompt "The capital of France is" --max-new-tokens 16
done
echo "demo: ${SECONDS} s in all" >&2
