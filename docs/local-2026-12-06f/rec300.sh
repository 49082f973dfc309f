#!/bin/bash
# Stop 49: what the 20-minute budget holds on this CPU for the fisher+mix slice: 300 steps (one pass, no repeat).
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs49
/usr/bin/time -v andactl recover /work/runs46/fmix --full --steps 300 --eval-every 50 -o fmix_rec300 --overwrite > rec300.out 2> rec300.err
andactl eval fmix_rec300 --tasks wikitext2 --limit 10 --dtype float32 --format json > ppl10_rec300.json 2> ppl10_rec300.err
andactl eval fmix_rec300 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > zs500_rec300.json 2> zs500_rec300.err
andactl eval fmix_rec300 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > zsfull_rec300.json 2> zsfull_rec300.err
andactl eval fmix_rec300 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > hs2000_rec300.json 2> hs2000_rec300.err
