#!/bin/bash
# Model-level A/B of the AVX2 magnitude/sign M = 8 kernel, emulated AVX2-only (andactl and torch
# capped as in docs/local-2026-12-05e/avx2_emul.sh): andactl bench on dense SmolLM2 and Q1 ([8,7,8,8]),
# float32, 1 thread, base (a clone of a7455d6 at /work/ab/s34base, run from there) and new
# alternating. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05f
Q1=/work/runs/hl/q1
CAP="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ANDA_CPU_ISA=avx2"
ARGS="bench smollm2-135m $Q1 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --dtype float32"
for run in 1 2; do
  (cd /work/ab/s34base && env $CAP /work/main/.venv/bin/python -m andactl $ARGS) > $D/ab_ms_model_base_$run.txt 2> $D/ab_ms_model_base_$run.err
  env $CAP .venv/bin/python -m andactl $ARGS > $D/ab_ms_model_new_$run.txt 2> $D/ab_ms_model_new_$run.err
done
