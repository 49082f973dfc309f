#!/usr/bin/env bash
source /work/env.sh
O=/work/main/docs/local-2026-12-05b
A="/work/bench31/llama-1b /work/bench31/packed-1b --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 2"
(cd /work/main && .venv/bin/andactl bench $A > $O/bench1b_new_1.txt 2>$O/bench1b_new_1.err)
(cd /work/ab/s31base && PYTHONPATH=/work/ab/s31base /work/main/.venv/bin/python -m andactl bench $A > $O/bench1b_base_1.txt 2>$O/bench1b_base_1.err)
(cd /work/main && .venv/bin/andactl bench $A > $O/bench1b_new_2.txt 2>$O/bench1b_new_2.err)
