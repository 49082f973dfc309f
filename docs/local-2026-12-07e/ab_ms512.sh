#!/bin/bash
# The AVX-512 VNNI micro-kernels' magnitude/sign form for M = 8 (mk_avx512_ms, mk_avx512_1_ms)
# against the code before it (a clone of 4d56778 at /work/ab/s57base, PYTHONPATH), alternating,
# on this session's AMD EPYC Zen 4 (AVX-512 VNNI + BF16, no AMX). Run from the repository root
# under the shared lock: bash docs/local-2026-12-07e/ab_ms512.sh TAG
set -e
D=docs/local-2026-12-07e
TAG=${1:-ms}
for run in 1 2; do
  for t in 1 2; do
    PYTHONPATH=/work/ab/s57base .venv/bin/python /work/ab/s57base/benchmarks/bench_gemm.py --threads $t --repeat 3 > $D/ab_${TAG}_base_t${t}_$run.txt
    .venv/bin/python benchmarks/bench_gemm.py --threads $t --repeat 3 > $D/ab_${TAG}_new_t${t}_$run.txt
  done
done
