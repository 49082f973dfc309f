#!/bin/bash
# A/B of andactl::shortcut_add: base = a clone of 1e47ba2 (torch's matmul for shortcuts) run with
# PYTHONPATH, new = main; the whole chain (25% sliced -> recover --full 200 steps -> quantize) and
# its float recovered model beside dense, alternating, 1 thread (the headline's settings) and 2.
source /work/env.sh
PY=/work/main/.venv/bin/python
O=/work/main/docs/local-2026-12-05d
ARGS="bench smollm2-135m /work/runs/r32/full200 /work/runs/r32/full200_q1 --prompt-tokens 128 --gen-tokens 32 --batch 1,4"
for i in 1 2; do
  (cd /work/ab/s33base && PYTHONPATH=/work/ab/s33base $PY -m andactl $ARGS --threads 1 > $O/ab_sc_base_t1_$i.txt 2> $O/ab_sc_base_t1_$i.err)
  (cd /work/main && $PY -m andactl $ARGS --threads 1 > $O/ab_sc_new_t1_$i.txt 2> $O/ab_sc_new_t1_$i.err)
done
(cd /work/ab/s33base && PYTHONPATH=/work/ab/s33base $PY -m andactl $ARGS --threads 2 > $O/ab_sc_base_t2_1.txt 2> $O/ab_sc_base_t2_1.err)
(cd /work/main && $PY -m andactl $ARGS --threads 2 > $O/ab_sc_new_t2_1.txt 2> $O/ab_sc_new_t2_1.err)
