#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
for i in 1 2; do
  (cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python -m andactl bench smollm2-135m /work/runs/hl/q1 /work/runs/hl/q5 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 > $O/headline_base_$i.txt 2>$O/headline_base_$i.err)
  (cd /work/main && .venv/bin/andactl bench smollm2-135m /work/runs/hl/q1 /work/runs/hl/q5 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 > $O/headline_$((i+2)).txt 2>$O/headline_$((i+2)).err)
done
