#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
(cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python -m andactl bench smollm2-135m /work/runs/chain/sliced /work/runs/hl/q1 --threads 2 --repeat 3 > $O/issue_default_base_1.txt 2>$O/issue_default_base_1.err)
(cd /work/main && .venv/bin/andactl bench smollm2-135m /work/runs/chain/sliced /work/runs/hl/q1 --threads 2 --repeat 3 > $O/issue_default_2.txt 2>$O/issue_default_2.err)
