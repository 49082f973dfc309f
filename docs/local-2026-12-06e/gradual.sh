#!/bin/bash
# stop 48: gradual slicing, two stages (576 -> 504 -> 432), 20 + 20 recovery steps
set -e
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
R=/work/runs48
t() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
t $A slice smollm2-135m --ratio 0.125 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix -o $R/g1 2> $R/g1.err
tail -1 $R/g1.err
t $A recover $R/g1 --full --steps 20 -o $R/g1r 2> $R/g1r.err
tail -1 $R/g1r.err
t .venv/bin/python /work/s48/reslice.py $R/g1r -o $R/g2 --width 432 --basis fisher --cal-data mix --cal-samples 16 --cal-seqlen 1024 2> $R/g2.err
tail -2 $R/g2.err
t $A recover $R/g2 --full --steps 20 -o $R/g2r 2> $R/g2r.err
tail -1 $R/g2r.err
$A eval $R/g1 $R/g1r $R/g2 $R/g2r /work/runs46/fmix_rec --tasks wikitext2 --limit 10 --dtype float32 --format json --output_path $R/ppl10_a.json 2> $R/ppl10_a.err
tail -12 $R/ppl10_a.err
