#!/bin/bash
# stop 48: gradual slicing with the 200-step budget: 576 -> 504 (100 steps) -> 432 (100 steps)
set -e
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
R=/work/runs48
t() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
t $A recover $R/g1 --full --steps 100 --eval-every 20 -o $R/g1r100 2> $R/g1r100.err
tail -1 $R/g1r100.err
t .venv/bin/python /work/s48/reslice.py $R/g1r100 -o $R/g2_100 --width 432 --basis fisher --cal-data mix --cal-samples 16 --cal-seqlen 1024 2> $R/g2_100.err
tail -2 $R/g2_100.err
t $A recover $R/g2_100 --full --steps 100 --eval-every 20 -o $R/g2r100 2> $R/g2r100.err
tail -1 $R/g2r100.err
$A eval $R/g1r100 $R/g2_100 $R/g2r100 --tasks wikitext2 --limit 10 --dtype float32 --format json --output_path $R/ppl10_b.json 2> $R/ppl10_b.err
$A eval $R/g2r100 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json --output_path $R/zs_g2r100.json 2> $R/zs_g2r100.err
