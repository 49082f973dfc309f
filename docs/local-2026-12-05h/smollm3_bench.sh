#!/usr/bin/env bash
# SmolLM3-3B-shaped random model: INT4 + Anda artifact, then andactl bench dense vs packed, with the
# lean decode step (--attention auto) and without it (--attention sdpa). Run alone under the lock.
set -euo pipefail
W=${1:-/work/bench37}; O=$(dirname "$0"); A=.venv/bin/andactl
/usr/bin/time -v python benchmarks/random_models.py smollm3-3b --workdir "$W" 2> "$O/smollm3_write.err"
[ -f "$W/smollm3-packed/model.safetensors" ] || /usr/bin/time -v $A quantize "$W/smollm3-3b" --weight-method rtn \
    --bits 8 7 8 8 -o "$W/smollm3-packed" > "$O/smollm3_quantize.out" 2> "$O/smollm3_quantize.err"
for att in auto sdpa; do
  $A bench "$W/smollm3-3b" "$W/smollm3-packed" --prompt-tokens 128 --gen-tokens 16 --batch 1,4 --threads 2 \
     --attention $att > "$O/smollm3_bench_$att.txt" 2> "$O/smollm3_bench_$att.err"
done
