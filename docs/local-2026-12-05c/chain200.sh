#!/usr/bin/env bash
# Issue 9's chain on the 200-step recovery (alpaca slice): quantize at the defaults (W4 GPTQ asymmetric g64 + Anda 1%).
source /work/env.sh
O=/work/main/docs/local-2026-12-05c
R=/work/runs/r32
L="flock /work/heavy.lock"
cd /work/main
$L /usr/bin/time -v .venv/bin/andactl quantize $R/full200 -o $R/full200_q1 > $O/chain200_quantize.out 2> $O/chain200_quantize.err
$L .venv/bin/andactl eval $R/full200_q1 --tasks wikitext2 --limit 10 --dtype float32 > $O/chain200_eval10.out 2> $O/chain200_eval10.err
$L .venv/bin/andactl eval $R/full200_q1 --tasks wikitext2 --dtype float32 > $O/chain200_evalfull.out 2> $O/chain200_evalfull.err
$L .venv/bin/andactl eval $R/full200_q1 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 \
  > $O/chain200_zs.out 2> $O/chain200_zs.err
