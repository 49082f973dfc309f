#!/bin/bash
# Stop 38: the float32 head loss and --teacher-topk on SmolLM2-135M sliced 25% (16x1024 alpaca PCA).
set -e
cd "$(dirname "$0")"
D=/work/runs38
T="/usr/bin/time -v"
[ -d $D/sliced ] || $T andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 -o $D/sliced > slice.out 2> slice.err
$T python old_head.py recover $D/sliced --full -o $D/old_head > old_head.out 2> old_head.err
$T andactl recover $D/sliced --full -o $D/full32 > full32.out 2> full32.err
$T andactl recover $D/sliced --full --teacher-topk 64 -o $D/topk64 > topk64.out 2> topk64.err
andactl eval $D/sliced $D/old_head $D/full32 $D/topk64 --tasks wikitext2 --limit 10 --dtype float32 > ppl.txt 2> ppl.err
