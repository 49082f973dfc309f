#!/bin/bash
# Stop 52: the --minutes 20 model on the full WikiText-2 test set and the larger zero-shot samples (full piqa and
# arc_easy, 2000 hellaswag documents), as stops 49-50 measured theirs. Alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs52
flock /work/heavy.lock andactl eval $R/min20 --tasks wikitext2 --dtype float32 --format json > min20_pplfull.json 2> min20_pplfull.err
flock /work/heavy.lock andactl eval $R/min20 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > min20_zsfull.json 2> min20_zsfull.err
flock /work/heavy.lock andactl eval $R/min20 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > min20_hs2000.json 2> min20_hs2000.err
echo done
