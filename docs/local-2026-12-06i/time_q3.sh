#!/bin/bash
# Stop 52: recover's --dry-run time against the measured pass on a random Qwen3-0.6B-shaped model sliced
# by 25% (stop 51's memory_q3.sh runs: 4 steps of 2 x 256 tokens), LoRA and --full, in process and top-64.
# Random weights: time and memory only. Each alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
W=/work/bench50
R="--steps 4 --batch-size 2 --seqlen 256 --held-out 2 --eval-every 4"
for mode in lora full; do
  F=""; [ $mode = full ] && F="--full"
  for K in 0 64; do
    flock /work/heavy.lock andactl recover $W/q3-sliced $F $R --teacher-topk $K --dry-run --format json -o $W/x > q3_${mode}_k${K}.dry.json 2> /dev/null
    rm -rf $W/t-$mode-k$K
    flock /work/heavy.lock /usr/bin/time -v andactl recover $W/q3-sliced $F $R --teacher-topk $K -o $W/t-$mode-k$K > q3_${mode}_k${K}.out 2> q3_${mode}_k${K}.err
    cp $W/t-$mode-k$K/report.json q3_${mode}_k${K}.report.json
  done
done
echo done
