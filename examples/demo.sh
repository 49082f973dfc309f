#!/usr/bin/env bash
# `make demo`: the main job on the default model with small calibration settings.
# Today: evaluation of the dense SmolLM2-135M (grows into slice -> quantize -> eval).
set -euo pipefail
OUT=${1:-runs/demo}
A=.venv/bin/andactl
mkdir -p "$OUT"
$A env
$A eval smollm2-135m --tasks wikitext2,piqa,arc_e --limit 8 --output_path "$OUT/eval.json"
