#!/bin/bash
# Stop 50: what the 20-minute budget holds on this CPU for the fisher+mix slice after the head-loss speed-up: 350 steps (1.15 passes).
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs50
/usr/bin/time -v andactl recover /work/runs46/fmix --full --steps 350 --eval-every 50 -o fmix_rec350 --overwrite > rec350.out 2> rec350.err
andactl eval fmix_rec350 --tasks wikitext2 --limit 10 --dtype float32 --format json > ppl10_rec350.json 2> ppl10_rec350.err
andactl eval fmix_rec350 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > zs500_rec350.json 2> zs500_rec350.err
andactl eval fmix_rec350 --tasks wikitext2 --dtype float32 --format json > pplfull_rec350.json 2> pplfull_rec350.err
andactl eval fmix_rec350 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > zsfull_rec350.json 2> zsfull_rec350.err
andactl eval fmix_rec350 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > hs2000_rec350.json 2> hs2000_rec350.err
