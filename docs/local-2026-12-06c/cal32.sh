#!/bin/bash
# Stop 46: does the fisher+mix slice gain from twice the calibration (32 x 1024)?
set -x
cd /work/main && . /work/env.sh
A=.venv/bin/andactl
R=/work/runs46
S=/work/s46
t() { /usr/bin/time -v "$@" 2> >(tee -a $S/time_cal32.err >&2); }
date
t $A slice smollm2-135m --ratio 0.25 --cal-samples 32 --cal-seqlen 1024 --basis fisher --cal-data mix -o $R/fmix32
date
t $A recover $R/fmix32 --full -o $R/fmix32_rec
date
$A eval $R/fmix32 $R/fmix32_rec --tasks wikitext2 --limit 10 --dtype float32 --output_path $S/fmix32_ppl10.json
date
$A eval $R/fmix32_rec --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix32_rec_zs.json
date
