#!/bin/bash
cd /work/s62/p
source /work/env.sh; source /work/main/.venv/bin/activate
CAL="--cal-samples 4 --cal-seqlen 128"
chk() { "$@" --format json > /tmp/j.out 2>/tmp/j.err; rc=$?; python -c "import json,sys; json.load(open('/tmp/j.out'))" 2>/dev/null && echo "ok   rc=$rc $*" || { echo "BAD  rc=$rc $*"; head -c 300 /tmp/j.out; echo; tail -2 /tmp/j.err; }; }
D=f_llama
chk andactl slice $D --ratio 0.25 $CAL -o j.s --overwrite

chk andactl recover j.s --full --steps 2 --seqlen 64 --batch-size 2 --held-out 2 -o j.r --overwrite

chk andactl prune $D --ratio 0.2 $CAL -o j.p --overwrite
chk andactl quantize j.r $CAL --max-evals 8 --tolerance 0.05 -o j.q --overwrite
chk andactl eval j.q --tasks wikitext2 --limit 2 --seqlen 64
chk andactl inspect j.q
chk andactl inspect $D
chk andactl bench $D j.q --prompt-tokens 16 --gen-tokens 4 --batch 1
chk andactl env
chk andactl kernels info
chk andactl passes
chk andactl sweep $D -o j.sw --ratios 0,0.25 --tolerances 0.01 --windows 2 --seqlen 64 $CAL --max-evals 8 --tolerance 0.05
printf -- "- {pass: fuse_norms}\n- {pass: rotate, ratio: 0.25}\n- {pass: slice}\n" > /tmp/r.yaml
chk andactl run /tmp/r.yaml --model $D -o j.run --overwrite
chk andactl -q run /tmp/r.yaml --model $D -o j.run --overwrite
andactl export j.q --to compressed-tensors -o j.ct
