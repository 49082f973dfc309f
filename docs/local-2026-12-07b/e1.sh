#!/bin/bash
# Stop 54, scratch: recover --train-data self where the teacher continues alpaca prompts (seeded.py), 154 steps as self20.
cd /work/s54
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs54; F=/work/runs46/fmix
rm -rf $R/seed154
flock /work/heavy.lock /usr/bin/time -v python seeded.py recover $F --full --train-data self --steps 154 --eval-every 50 -o $R/seed154 > seed154.out 2> seed154.err
cp $R/seed154/report.json seed154.report.json
flock /work/heavy.lock andactl eval $R/seed154 --tasks wikitext2 --limit 10 --dtype float32 --format json > seed154_ppl.json 2> seed154_ppl.err
flock /work/heavy.lock andactl eval $R/seed154 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > seed154_zs.json 2> seed154_zs.err
flock /work/heavy.lock andactl eval $R/seed154 --tasks wikitext2 --dtype float32 --format json > seed154_pplfull.json 2> seed154_pplfull.err
echo done
