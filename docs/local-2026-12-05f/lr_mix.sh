#!/bin/bash
# A higher peak learning rate for the 200-step full recovery (the 40-step default's 1e-4 was tuned at
# 6k tokens): the mix-calibrated slice (stop 34 / `--cal-data mix`), lr 3e-4, then WikiText-2's first
# 10 windows beside stop 34's lr 1e-4 run. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05f
/usr/bin/time -v .venv/bin/andactl recover /work/runs/r35/mix --full --steps 200 --lr 3e-4 --eval-every 20 \
  -o /work/runs/r35/mix200_lr3 > $D/lr_mix_recover.out 2> $D/lr_mix_recover.err
.venv/bin/andactl eval /work/runs/r35/mix200_lr3 /work/runs/r34/mix200 --tasks wikitext2 --limit 10 --dtype float32 \
  > $D/lr_mix_wt2.txt 2> $D/lr_mix_wt2.err
