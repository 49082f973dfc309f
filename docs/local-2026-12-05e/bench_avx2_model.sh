#!/bin/bash
# SmolLM2 dense vs the headline's Q1 / Q5 artifacts on an emulated AVX2-only CPU (andactl and torch
# capped to AVX2 as in avx2_emul.sh; float32, as such CPUs run without native bf16), code of f58b8ad.
set -e
D=docs/local-2026-12-05e
CAP="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ANDA_CPU_ISA=avx2"
for run in 1 2; do
  env $CAP .venv/bin/andactl bench smollm2-135m /work/runs/hl/q1 /work/runs/hl/q5 --prompt-tokens 128 --gen-tokens 32 \
    --batch 1,4 --threads 1 --dtype float32 > $D/bench_avx2_model_$run.txt 2> $D/bench_avx2_model_$run.err
done
