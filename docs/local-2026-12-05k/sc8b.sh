#!/bin/bash
# Stop 40: INT8 shortcuts on the headline chain's 200-step recovery, at the tuple its search chose
set -x
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
S=/work/runs40
T="/usr/bin/time -f %e_s_%M_KB"
$T $A quantize $S/full200 --bits 8 6 8 7 -o $S/q200_fixed --overwrite
$T $A quantize $S/full200 --bits 8 6 8 7 --shortcuts int8 -o $S/q200_sc8 --overwrite
$A inspect $S/q200_sc8 --format json > $S/q200_sc8.inspect.json
$T $A eval $S/q200 $S/q200_fixed $S/q200_sc8 --tasks wikitext2 --limit 10 --dtype float32 --format json > $S/ppl200_sc8.json
echo done
