#!/bin/bash
# KD + ce_weight x CE on the training text, 40 steps of `recover --full` from the ninth-round slice
# (/work/runs/chain/sliced), against stop 36's plain KD run (/work/s36/w_base, the same command
# without --ce-weight); WikiText-2 first 10 windows and piqa/arc_easy/hellaswag (first 500) in float32.
cd /work/main && source /work/env.sh
O=docs/local-2026-12-05h
for w in 0.5 1; do
  d=/work/s37/ce_$w
  /usr/bin/time -v .venv/bin/andactl recover /work/runs/chain/sliced --full --ce-weight $w -o $d --overwrite > $O/ce_$w.out 2> $O/ce_$w.err
  grep -E 'Elapsed|Maximum resident' $O/ce_$w.err; grep -o 'held_out_after[^,]*' $d/report.json
done
.venv/bin/andactl eval /work/s36/w_base /work/s37/ce_0.5 /work/s37/ce_1 --tasks wikitext2 --limit 10 --dtype float32 > $O/ce_ppl.txt 2>&1
.venv/bin/andactl eval /work/s36/w_base /work/s37/ce_0.5 /work/s37/ce_1 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 > $O/ce_zs.txt 2>&1
