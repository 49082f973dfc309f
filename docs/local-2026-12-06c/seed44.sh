#!/bin/bash
# Stop 46: the spread of the fisher+mix slice over the seed (calibration rows, sampled text, labels): seed 44.
set -x
cd /work/main && . /work/env.sh
A=.venv/bin/andactl
R=/work/runs46
S=/work/s46
t() { /usr/bin/time -v "$@" 2> >(tee -a $S/time_seed44.err >&2); }
date
t $A slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix --seed 44 -o $R/fmix_s44
date
t $A recover $R/fmix_s44 --full -o $R/fmix_s44_rec
date
$A eval $R/fmix_s44 $R/fmix_s44_rec --tasks wikitext2 --limit 10 --dtype float32 --output_path $S/fmix_s44_ppl10.json
date
