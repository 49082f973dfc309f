#!/bin/bash
# Stop 38: peak RSS of recovery with the teacher in process vs --teacher-topk (student parked while the
# teacher runs), on a random model of Qwen3-0.6B's published shape sliced by 25%.
# Quality of random weights means nothing here; memory and time do.
set -e
cd "$(dirname "$0")"
W=/work/bench38
mkdir -p $W
T="/usr/bin/time -v"
M=$(python ../../benchmarks/random_models.py qwen3-0.6b --workdir $W | tail -1)
[ -d $W/q3-sliced ] || $T andactl slice $M --ratio 0.25 --cal-samples 4 --cal-seqlen 256 -o $W/q3-sliced > q3_slice.out 2> q3_slice.err
R="--steps 4 --batch-size 2 --seqlen 256 --held-out 2 --eval-every 4"
for mode in lora full; do
  F=""; [ $mode = full ] && F="--full"
  $T andactl recover $W/q3-sliced $F $R -o $W/q3-$mode-inproc --overwrite > q3b_${mode}_inproc.out 2> q3b_${mode}_inproc.err
  $T andactl recover $W/q3-sliced $F $R --teacher-topk 64 -o $W/q3-$mode-topk --overwrite > q3b_${mode}_topk.out 2> q3b_${mode}_topk.err
done
grep -H "Maximum resident\|Elapsed" q3b_*.err
# SmolLM2 top-64 again on the final code (the first run predates the heap trimming)
$T andactl recover /work/runs38/sliced --full --teacher-topk 64 -o /work/runs38/topk64b > topk64b.out 2> topk64b.err
andactl eval /work/runs38/topk64 /work/runs38/topk64b --tasks wikitext2 --limit 10 --dtype float32 > ppl_64b.txt 2> ppl_64b.err
