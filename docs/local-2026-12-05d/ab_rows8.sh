#!/bin/bash
# SHORTCUT_ROWS 4 (a clone of d6453be, run with PYTHONPATH) against 8 (the working tree), the whole
# chain at batch 4 and 8 on one thread, two alternating pairs.
source /work/env.sh
PY=/work/main/.venv/bin/python
O=/work/main/docs/local-2026-12-05d
ARGS="bench smollm2-135m /work/runs/r32/full200_q1 --prompt-tokens 128 --gen-tokens 32 --batch 4,8 --threads 1"
for i in 1 2; do
  (cd /work/ab/s33head && PYTHONPATH=/work/ab/s33head $PY -m andactl $ARGS > $O/ab_rows4_$i.txt 2> $O/ab_rows4_$i.err)
  (cd /work/main && $PY -m andactl $ARGS > $O/ab_rows8_$i.txt 2> $O/ab_rows8_$i.err)
done
