#!/bin/bash
# Stop 53, part 2 (after selftext.sh): the self-text 20-minute model on the full WikiText-2 test set and the larger
# zero-shot samples (as stop 52's min20_full.sh), and the sampling time fit (sample_fit.py). Alone under the lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs53
while pgrep -f selftext.sh > /dev/null; do sleep 10; done
flock /work/heavy.lock python sample_fit.py > sample_fit.log 2> sample_fit.err
flock /work/heavy.lock andactl eval $R/self20 --tasks wikitext2 --dtype float32 --format json > self20_pplfull.json 2> self20_pplfull.err
flock /work/heavy.lock andactl eval $R/self20 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > self20_zsfull.json 2> self20_zsfull.err
flock /work/heavy.lock andactl eval $R/self20 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > self20_hs2000.json 2> self20_hs2000.err
echo done
