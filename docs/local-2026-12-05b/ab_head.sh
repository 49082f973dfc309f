#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
cp /work/main/benchmarks/bench_head.py /work/tmp/bench_head_new.py
cp /work/main/benchmarks/bench_gemm.py /work/tmp/bench_gemm.py
for i in 1 2; do
  (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python /work/ab/s31base/benchmarks/bench_head.py --threads 2 --tokens 1,2,8 > $O/bench_head_base_$i.txt 2>&1)
  (cd /work/main && .venv/bin/python benchmarks/bench_head.py --threads 2 --tokens 1,2,8 > $O/bench_head_rows4_$i.txt 2>&1)
done
