#!/bin/bash
# Round 24 (stop 49): the stop-46 fisher+mix 25% slice recovered for 600 steps (1.98 epochs of the local alpaca; 1000 was refused before the epoch change: 1213 sequences).
set -e
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/runs49
/usr/bin/time -v andactl recover /work/runs46/fmix --full --steps 600 --eval-every 50 -o fmix_rec600 --overwrite > rec600.out 2> rec600.err
andactl eval fmix_rec600 --tasks wikitext2 --limit 10 --dtype float32 --format json > ppl10_rec600.json 2> ppl10_rec600.err
andactl eval fmix_rec600 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > zs500_rec600.json 2> zs500_rec600.err
andactl eval fmix_rec600 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > zsfull_rec600.json 2> zsfull_rec600.err
andactl eval fmix_rec600 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > hs2000_rec600.json 2> hs2000_rec600.err
