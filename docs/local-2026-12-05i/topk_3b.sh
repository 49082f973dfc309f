#!/bin/bash
# Stop 38: recovery of a 25%-sliced random model of SmolLM3-3B's published shape on this 24 GB machine:
# teacher in process (expected not to fit) vs --teacher-topk 64 (student parked while the teacher runs).
# Random weights: memory and time only.
cd "$(dirname "$0")"
W=/work/bench38
T="/usr/bin/time -v"
M=$(python ../../benchmarks/random_models.py smollm3-3b --workdir $W | tail -1)
[ -d $W/s3-sliced ] || $T andactl slice $M --ratio 0.25 --cal-samples 4 --cal-seqlen 256 -o $W/s3-sliced > s3_slice.out 2> s3_slice.err
R="--steps 2 --batch-size 1 --seqlen 256 --held-out 1 --eval-every 2"
$T andactl recover $W/s3-sliced $R --teacher-topk 64 -o $W/s3-topk --overwrite > s3_topk.out 2> s3_topk.err
echo "topk exit $?"
$T andactl recover $W/s3-sliced $R -o $W/s3-inproc --overwrite > s3_inproc.out 2> s3_inproc.err
echo "inproc exit $?"
grep -H "Maximum resident\|Elapsed\|Exit status\|signal" s3_*.err
