#!/bin/bash
# stop 48: the default 40-step recovery (stop 46's FMIX_REC) on the full piqa / arc_easy sets and 2000 hellaswag documents
set -e
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
R=/work/runs48
/usr/bin/time -f "fmix_rec piqa,arc_easy: %e s wall, %M KB" $A eval /work/runs46/fmix_rec --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json --output_path $R/zsfull_fmix_rec.json 2> $R/zsfull_fmix_rec.err
tail -1 $R/zsfull_fmix_rec.err
/usr/bin/time -f "fmix_rec hellaswag 2000: %e s wall, %M KB" $A eval /work/runs46/fmix_rec --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json --output_path $R/zsh2000_fmix_rec.json 2> $R/zsh2000_fmix_rec.err
tail -1 $R/zsh2000_fmix_rec.err
