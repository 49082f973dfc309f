#!/bin/bash
# Stop 51: the recover memory runs of stop 50 again, with autocast's weight copies held through backward (and the
# packed heads where --head-products auto packs them: not in training at this vocabulary, but the top-64 runs' teacher
# phase packs the teacher's head, 0.62 GB), beside each run's --dry-run estimate.
# A random model of Qwen3-0.6B's published shape sliced by 25% (SmolLM2's FMIX runs: abfinal.sh, topk_final.sh).
# Random weights: memory only.
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

grep -H "Maximum resident\|Elapsed" q3_*.err
grep -H "peak host RAM" *.dry
# After the runs, HEAD_CHUNK_COPIES 6 -> 7 (the LoRA run measured above its estimate): the estimates again, *.dry7
