#!/usr/bin/env bash
# Alternating before/after: random 1B Llama (DRAM-resident weights), 2 threads.
source /work/env.sh
O=/work/main/docs/local-2026-12-05c
A="/work/bench31/llama-1b /work/bench31/packed-1b --prompt-tokens 128 --gen-tokens 32 --batch 1,4,8 --threads 2"
N=${N:-final}  # the first A/B (919fa59) ran before this line existed: bench1b_{new,base}_{1,2}.txt
for i in 1 2; do
  (cd /work/main && flock /work/heavy.lock .venv/bin/andactl bench $A > $O/bench1b_${N}_new_$i.txt 2>$O/bench1b_${N}_new_$i.err)
  (cd /work/ab/s32base && PYTHONPATH=/work/ab/s32base flock /work/heavy.lock /work/main/.venv/bin/python -m andactl bench $A > $O/bench1b_${N}_base_$i.txt 2>$O/bench1b_${N}_base_$i.err)
done
