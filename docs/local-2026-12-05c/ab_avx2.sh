#!/usr/bin/env bash
# The new prefetch at the AVX2 level on this Xeon (ANDA_CPU_ISA=avx2): 1B decode step, alternating.
source /work/env.sh
O=/work/main/docs/local-2026-12-05c
P=/work/main/docs/local-2026-12-05c/adhoc/prof1b.py
for i in 1 2; do for b in 1 4; do
  n=$(cd /work/main && ANDA_CPU_ISA=avx2 flock /work/heavy.lock .venv/bin/python $P /work/bench31/packed-1b $b 2>/dev/null | grep 'ms per step')
  o=$(cd /work/ab/s32base && PYTHONPATH=/work/ab/s32base ANDA_CPU_ISA=avx2 flock /work/heavy.lock /work/main/.venv/bin/python $P /work/bench31/packed-1b $b 2>/dev/null | grep 'ms per step')
  echo "avx2 b$b new $n | base $o"
done; done > $O/prof1b_avx2_ab.txt
