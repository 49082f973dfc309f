#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
for i in 3 4; do
  (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python /work/tmp/bench_gemm_new.py --threads 2 --repeat 5 > $O/bench_gemm_base_$i.txt 2>&1)
  (cd /work/main && .venv/bin/python benchmarks/bench_gemm.py --threads 2 --repeat 5 > $O/bench_gemm_f16_$i.txt 2>&1)
done
