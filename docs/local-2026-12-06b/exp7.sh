#!/bin/bash
# stop 44 exp7: the Fisher basis search's Adam step (0.01 default) at 0.003 and 0.001
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
for lr in 0.001; do
date
python /work/s44/fisher_lr.py $lr 300 smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher -o /work/runs44/fisher_lr$lr 2> /work/s44/fisher_lr$lr.err | tail -1
done
date
andactl eval /work/runs44/fisher_lr0.001 --tasks wikitext2 --limit 10 --dtype float32 --format json > /work/s44/fisher_lr_ppl.json 2>/dev/null
cat /work/s44/fisher_lr_ppl.json
date
