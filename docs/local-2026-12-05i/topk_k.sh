#!/bin/bash
# Stop 38: --teacher-topk K for K = 16 and 256 beside topk.sh's runs (same slice, 40 steps of --full).
set -e
cd "$(dirname "$0")"
D=/work/runs38
T="/usr/bin/time -v"
for K in 16 256; do
  $T andactl recover $D/sliced --full --teacher-topk $K -o $D/topk$K > topk$K.out 2> topk$K.err
done
andactl eval $D/topk16 $D/topk64 $D/topk256 $D/full32 --tasks wikitext2 --limit 10 --dtype float32 > ppl_k.txt 2> ppl_k.err
