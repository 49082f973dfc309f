#!/usr/bin/env bash
# Final A/B of stop 32: new = /work/main (919fa59 kernels), base = clone of 80593cc; alternating.
source /work/env.sh
O=/work/main/docs/local-2026-12-05c
HL="smollm2-135m /work/runs/hl/q1 /work/runs/hl/q5 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1"
IS="smollm2-135m /work/runs/chain/sliced /work/runs/hl/q1 --threads 2 --repeat 3"
L="flock /work/heavy.lock"
new() { (cd /work/main && $L .venv/bin/andactl bench "$@"); }
base() { (cd /work/ab/s32base && PYTHONPATH=/work/ab/s32base $L /work/main/.venv/bin/python -m andactl bench "$@"); }
gemm_new() { (cd /work/main && $L .venv/bin/python benchmarks/bench_gemm.py --threads $1 --repeat 5); }
gemm_base() { (cd /work/ab/s32base && PYTHONPATH=/work/ab/s32base $L /work/main/.venv/bin/python benchmarks/bench_gemm.py --threads $1 --repeat 5); }
for i in 1 2; do
  new $HL > $O/final_headline_new_$i.txt 2>/dev/null
  base $HL > $O/final_headline_base_$i.txt 2>/dev/null
  new $IS > $O/final_issue_new_$i.txt 2>/dev/null
  base $IS > $O/final_issue_base_$i.txt 2>/dev/null
done
for t in 1 2; do
  gemm_new $t > $O/final_bench_gemm_new_t$t.txt 2>&1
  gemm_base $t > $O/final_bench_gemm_base_t$t.txt 2>&1
done
