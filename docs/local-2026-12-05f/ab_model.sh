#!/bin/bash
# Model-level A/B of the folded AMX two-chunk path: andactl bench on dense SmolLM2 and Q1 ([8,7,8,8]:
# three of four module types at M = 8), base (a clone of a7455d6 at /work/ab/s34base, run from there) and
# new alternating, 2 threads. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05f
Q1=/work/runs/hl/q1
for run in 1 2; do
  (cd /work/ab/s34base && /work/main/.venv/bin/python -m andactl bench smollm2-135m $Q1 --prompt-tokens 512 --gen-tokens 16 --batch 1,8 --threads 2 --repeat 3) > $D/ab_model_base_$run.txt 2> $D/ab_model_base_$run.err
  .venv/bin/python -m andactl bench smollm2-135m $Q1 --prompt-tokens 512 --gen-tokens 16 --batch 1,8 --threads 2 --repeat 3 > $D/ab_model_new_$run.txt 2> $D/ab_model_new_$run.err
done
