#!/bin/bash
# Stop 52: the --dry-run estimates of time_fmix.sh's and time_q3.sh's runs on the refitted constants, three reads each
# for SmolLM2 (the probe reads ±8%), one for the Qwen3-0.6B-shaped runs. Alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
for i in 1 2 3; do
  flock /work/heavy.lock andactl recover /work/runs46/fmix --full --dry-run --format json -o /tmp/x > fmix_inproc.dry$i.json 2>/dev/null
  flock /work/heavy.lock andactl recover /work/runs46/fmix --full --teacher-topk 64 --dry-run --format json -o /tmp/x > fmix_topk.dry$i.json 2>/dev/null
done
R="--steps 4 --batch-size 2 --seqlen 256 --held-out 2 --eval-every 4"
for mode in lora full; do
  F=""; [ $mode = full ] && F="--full"
  for K in 0 64; do
    flock /work/heavy.lock andactl recover /work/bench50/q3-sliced $F $R --teacher-topk $K --dry-run --format json -o /tmp/x > q3_${mode}_k${K}.after.json 2>/dev/null
  done
done
