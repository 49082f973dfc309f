#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
for i in 1 2; do
  (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python -m andactl bench /work/runs/hl/q1 --threads 2 --batch 1,8 > $O/bench_q1_base_$i.txt 2>$O/bench_q1_base_$i.err)
  (cd /work/main && .venv/bin/python -m andactl bench /work/runs/hl/q1 --threads 2 --batch 1,8 > $O/bench_q1_f16_$i.txt 2>$O/bench_q1_f16_$i.err)
done
