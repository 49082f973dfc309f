#!/bin/bash
# Stop 46: re-measure stop 45's fisher+mix chain (its scratch outputs were lost with its machine).
set -x
cd /work/main && . /work/env.sh
A=.venv/bin/andactl
R=/work/runs46
S=/work/s46
t() { /usr/bin/time -v "$@" 2> >(tee -a $S/time.err >&2); }
date
t $A slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix -o $R/fmix
date
t $A recover $R/fmix --full -o $R/fmix_rec
date
$A eval $R/fmix $R/fmix_rec --tasks wikitext2 --limit 10 --dtype float32 --output_path $S/fmix_rec_ppl10.json
date
t $A recover $R/fmix --full --steps 200 --eval-every 20 -o $R/fmix_rec200
date
t $A quantize $R/fmix_rec200 -o $R/fmix_q200
date
$A eval $R/fmix_rec200 $R/fmix_q200 --tasks wikitext2 --limit 10 --dtype float32 --output_path $S/fmix_200_ppl10.json
date
$A eval $R/fmix_q200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_q200_zs.json
date
$A eval $R/fmix_rec200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_rec200_zs.json
date
$A eval $R/fmix_rec --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_rec_zs.json
date
