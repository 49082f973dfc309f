#!/bin/bash
# Stop 50: stop 38's recover memory runs (docs/local-2026-12-05i/topk_memory2.sh) again on the reused-buffer head
# loss, beside each run's --dry-run estimate: a random model of Qwen3-0.6B's published shape sliced by 25%, and
# SmolLM2's FMIX slice. Random weights: memory only.
set -e
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
W=/work/bench50
mkdir -p $W
T="/usr/bin/time -v"
M=$(python ../../benchmarks/random_models.py qwen3-0.6b --workdir $W | tail -1)
[ -d $W/q3-sliced ] || andactl slice $M --ratio 0.25 --cal-samples 4 --cal-seqlen 256 -o $W/q3-sliced > /dev/null 2>&1
R="--steps 4 --batch-size 2 --seqlen 256 --held-out 2 --eval-every 4"
for mode in lora full; do
  F=""; [ $mode = full ] && F="--full"
  for K in 0 64; do
    andactl recover $W/q3-sliced $F $R --teacher-topk $K --dry-run -o $W/x > q3_${mode}_k${K}.dry 2>&1
    $T andactl recover $W/q3-sliced $F $R --teacher-topk $K -o $W/q3-$mode-k$K --overwrite > q3_${mode}_k${K}.out 2> q3_${mode}_k${K}.err
  done
done
andactl recover /work/runs46/fmix --full --dry-run -o $W/x > fmix_full.dry 2>&1
grep -H "Maximum resident\|Elapsed" q3_*.err
grep -H "peak host RAM" *.dry
