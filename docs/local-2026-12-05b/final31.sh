#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
B1="/work/bench31/llama-1b /work/bench31/packed-1b --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 2"
HL="smollm2-135m /work/runs/hl/q1 /work/runs/hl/q5 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1"
IS="smollm2-135m /work/runs/chain/sliced /work/runs/hl/q1 --threads 2 --repeat 3"
new() { (cd /work/main && .venv/bin/andactl bench "$@"); }
base() { (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python -m andactl bench "$@"); }
for i in 1 2; do
  new $B1 > $O/final_1b_new_$i.txt 2>/dev/null
  base $B1 > $O/final_1b_base_$i.txt 2>/dev/null
  new $HL > $O/final_headline_new_$i.txt 2>/dev/null
  base $HL > $O/final_headline_base_$i.txt 2>/dev/null
  new $IS > $O/final_issue_new_$i.txt 2>/dev/null
  base $IS > $O/final_issue_base_$i.txt 2>/dev/null
done
(cd /work/main && .venv/bin/python benchmarks/bench_gemm.py --threads 2 --repeat 5 > $O/final_bench_gemm_t2.txt 2>&1)
(cd /work/main && .venv/bin/python benchmarks/bench_gemm.py --threads 1 --repeat 5 > $O/final_bench_gemm_t1.txt 2>&1)
