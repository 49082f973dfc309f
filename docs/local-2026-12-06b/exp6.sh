#!/bin/bash
# stop 44 exp6: the scratch K-FAC slice recovered; then the product's `slice --basis fisher`, recovered
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date

andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --dry-run -o /work/runs44/fisher 2>&1 | tail -9
date
/usr/bin/time -v andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher -o /work/runs44/fisher 2> /work/s44/fisher_slice.err | tail -3
date
/usr/bin/time -v andactl recover /work/runs44/fisher --full -o /work/runs44/fisher_rec 2> /work/s44/fisher_rec.err | tail -2
date
andactl eval /work/runs44/fisher /work/runs44/fisher_rec --tasks wikitext2 --limit 10 --dtype float32 --format json > /work/s44/fisher_ppl.json 2>/dev/null
cat /work/s44/fisher_ppl.json
date
