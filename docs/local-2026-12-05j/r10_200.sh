#!/bin/bash
# 10% slice with stop 32's 200-step recovery: does the perplexity reach 2x dense at the smallest ratio?
cd /work/main && source /work/env.sh
flock /work/heavy.lock /usr/bin/time -v .venv/bin/andactl recover /work/runs39/s0.10 --full --steps 200 --eval-every 20 -o /work/runs39/rec0.10_200 > /work/s39/r10_200.out 2> /work/s39/r10_200.err
grep -E 'Elapsed|Maximum resident' /work/s39/r10_200.err
flock /work/heavy.lock .venv/bin/andactl eval /work/runs39/rec0.10_200 --tasks wikitext2 --limit 10 --dtype float32 --format json > /work/s39/r10_200_ppl.json 2>/dev/null
python3 -c "import json; d=json.load(open('/work/s39/r10_200_ppl.json')); print('ppl', d['models'][0]['results']['wikitext2']['ppl'])"
