#!/bin/bash
# Stop 40: INT8 shortcuts on the recovered one-table model (the packed chain's biggest float part)
set -x
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
S=/work/runs40
T="/usr/bin/time -f %e_s_%M_KB"
$T $A quantize $S/rec --bits 8 7 8 8 --shortcuts int8 -o $S/q_sc8 --overwrite
$A inspect $S/q_sc8 --format json > $S/q_sc8.inspect.json
$T $A eval $S/q $S/q_sc8 --tasks wikitext2 --limit 10 --dtype float32 --format json > $S/ppl_sc8.json
echo done
