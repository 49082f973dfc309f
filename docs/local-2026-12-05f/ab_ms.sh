#!/bin/bash
# The AVX2 micro-kernel's magnitude/sign form for M = 8 against the code before it (a clone of
# a7455d6 at /work/ab/s34base, PYTHONPATH), andactl and torch capped to AVX2 as in
# docs/local-2026-12-05e/avx2_emul.sh, alternating. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05f
TAG=${1:-ms}
CAP="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ANDA_CPU_ISA=avx2"
for run in 1 2; do
  for t in 1 2; do
    env $CAP PYTHONPATH=/work/ab/s34base .venv/bin/python /work/ab/s34base/benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/ab_${TAG}_base_t${t}_$run.txt
    env $CAP .venv/bin/python benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/ab_${TAG}_new_t${t}_$run.txt
  done
done
