#!/bin/bash
# The AVX2 kernel's whole-group int16 sums (M <= 6) against the code before them (a clone of 4aefd45
# at /work/ab/s34base, run with PYTHONPATH), alternating, andactl and torch capped to AVX2 as in
# avx2_emul.sh. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05e
CAP="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ANDA_CPU_ISA=avx2"
for run in 1 2; do
  for t in 1 2; do
    env $CAP PYTHONPATH=/work/ab/s34base .venv/bin/python /work/ab/s34base/benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/ab_avx2_base_t${t}_$run.txt
    env $CAP .venv/bin/python benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/ab_avx2_new_t${t}_$run.txt
  done
done
