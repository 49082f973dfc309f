#!/bin/bash
# A lower peak learning rate for the 200-step full recovery (after 3e-4 gave 97.79 against 1e-4's 78.70; the default 1e-4 was tuned at
# 6k tokens): the mix-calibrated slice (stop 34 / `--cal-data mix`), lr 5e-5, then WikiText-2's first
# 10 windows beside stop 34's lr 1e-4 run. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05f
/usr/bin/time -v .venv/bin/andactl recover /work/runs/r35/mix --full --steps 200 --lr 5e-5 --eval-every 20 \
  -o /work/runs/r35/mix200_lr05 > $D/lr05_mix_recover.out 2> $D/lr05_mix_recover.err
.venv/bin/andactl eval /work/runs/r35/mix200_lr05 /work/runs/r34/mix200 --tasks wikitext2 --limit 10 --dtype float32 \
  > $D/lr05_mix_wt2.txt 2> $D/lr05_mix_wt2.err
