#!/bin/bash
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs49
/usr/bin/time -v andactl quantize fmix_rec600 -o fmix_q600 --overwrite > q600.out 2> q600.err
andactl eval fmix_q600 --tasks wikitext2 --limit 10 --dtype float32 --format json > ppl10_q600.json 2> ppl10_q600.err
andactl eval fmix_q600 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > zs500_q600.json 2> zs500_q600.err
du -sb fmix_q600 > q600.du
