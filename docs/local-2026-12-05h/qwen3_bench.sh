#!/usr/bin/env bash
# Qwen3-0.6B-shaped random model: INT4 + Anda artifact, then andactl bench dense vs packed, with the
# lean decode step (--attention auto, default) and without it (--attention sdpa). Run alone under the lock.
set -euo pipefail
W=${1:-/work/bench37}; O=$(dirname "$0"); A=.venv/bin/andactl
python benchmarks/random_models.py qwen3-0.6b --workdir "$W"
[ -f "$W/qwen3-packed/model.safetensors" ] || /usr/bin/time -v $A quantize "$W/qwen3-0.6b" --weight-method rtn \
    --bits 8 7 8 8 -o "$W/qwen3-packed" > "$O/qwen3_quantize.out" 2> "$O/qwen3_quantize.err"
$A inspect "$W/qwen3-packed" > "$O/qwen3_inspect.txt" 2>/dev/null
for att in auto sdpa; do
  $A bench "$W/qwen3-0.6b" "$W/qwen3-packed" --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 2 \
     --repeat 3 --attention $att > "$O/qwen3_bench_$att.txt" 2> "$O/qwen3_bench_$att.err"
done
