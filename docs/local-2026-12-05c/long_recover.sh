#!/usr/bin/env bash
# Issue 9: what a 20-minute budget buys on this AMX Xeon (bf16 autocast): 5x the default steps.
source /work/env.sh
O=/work/main/docs/local-2026-12-05c
R=/work/runs/r32
mkdir -p $R
L="flock /work/heavy.lock"
cd /work/main
$L /usr/bin/time -v .venv/bin/andactl recover /work/runs/chain/sliced --full --steps 200 --eval-every 20 \
  -o $R/full200 > $O/long_recover.out 2> $O/long_recover.err
$L .venv/bin/andactl eval /work/runs/chain/recovered $R/full200 --tasks wikitext2 --limit 10 --dtype float32 \
  > $O/long_eval10.out 2> $O/long_eval10.err
$L .venv/bin/andactl eval $R/full200 --tasks wikitext2 --dtype float32 > $O/long_evalfull.out 2> $O/long_evalfull.err
