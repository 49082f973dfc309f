#!/bin/bash
# Stop 40: A/B with bit-identical bodies: the one-table recovered model vs its exactly untied copy
set -x
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
S=/work/runs40
T="/usr/bin/time -f %e_s_%M_KB"
$T $A quantize $S/rec_untied --bits 8 7 8 8 -o $S/qu_ab --overwrite
$T $A quantize $S/rec_untied --bits 8 7 8 8 --head none --embeddings none -o $S/qu_ab_notab --overwrite
$T $A eval $S/rec $S/rec_untied $S/qu_ab_notab $S/qu_ab --tasks wikitext2 --limit 10 --dtype float32 --format json > $S/ppl_ab.json
echo done
