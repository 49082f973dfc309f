#!/bin/bash
# Stop 59, AMD EPYC Zen 4: evaluate soups (soup.py) as stop 58 evaluated its recoveries. Each eval alone
# under the shared lock. usage: soup_eval.sh NAME... (artifacts in /work/runs59/NAME)
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
for v in "$@"; do
  flock /work/heavy.lock andactl eval /work/runs59/$v --tasks wikitext2 --limit 10 --dtype float32 --format json > ${v}_ppl.json 2> ${v}_ppl.err
  flock /work/heavy.lock /usr/bin/time -f "%e s" andactl eval /work/runs59/$v --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > ${v}_zs.json 2> ${v}_zs.err
done
echo done > soup_eval_$1.done
