#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
A="/work/bench31/llama-1b /work/bench31/packed-1b --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 2"
for i in 1 2; do
  (cd /work/main && .venv/bin/python benchmarks/bench_gemm.py --threads 2 --repeat 5 > $O/bench_gemm_prefetch_$i.txt 2>&1)
  (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python /work/tmp/bench_gemm_new.py --threads 2 --repeat 5 > $O/bench_gemm_base_p$i.txt 2>&1)
  (cd /work/main && .venv/bin/andactl bench $A > $O/bench1b_prefetch_$i.txt 2>$O/bench1b_prefetch_$i.err)
  (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python -m andactl bench $A > $O/bench1b_base_p$i.txt 2>$O/bench1b_base_p$i.err)
done
