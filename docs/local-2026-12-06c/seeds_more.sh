#!/bin/bash
# Stop 46: zero-shot of the seed-43/44 default recoveries; the seed-43 slice recovered for 200 steps.
set -x
cd /work/main && . /work/env.sh
A=.venv/bin/andactl
R=/work/runs46
S=/work/s46
t() { /usr/bin/time -v "$@" 2> >(tee -a $S/time_seeds_more.err >&2); }
date
$A eval $R/fmix_s43_rec --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_s43_rec_zs.json
date
$A eval $R/fmix_s44_rec --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_s44_rec_zs.json
date
t $A recover $R/fmix_s43 --full --steps 200 --eval-every 20 -o $R/fmix_s43_rec200
date
$A eval $R/fmix_s43_rec200 --tasks wikitext2 --limit 10 --dtype float32 --output_path $S/fmix_s43_rec200_ppl10.json
date
$A eval $R/fmix_s43_rec200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_s43_rec200_zs.json
date
$A eval $R/fmix_s43_rec200 --tasks wikitext2 --dtype float32 --output_path $S/fmix_s43_rec200_full.json
date
