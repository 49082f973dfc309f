#!/bin/bash
# The AMX GEMM's folded two-chunk path (M = 8..10: one C tile per step) against the code before it
# (a clone of a7455d6 at /work/ab/s34base, run with PYTHONPATH), alternating, native ISA (AMX).
# Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05f
for run in 1 2; do
  for t in 1 2; do
    PYTHONPATH=/work/ab/s34base .venv/bin/python /work/ab/s34base/benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/ab_fold_base_t${t}_$run.txt
    .venv/bin/python benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/ab_fold_new_t${t}_$run.txt
  done
done
