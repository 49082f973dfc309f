#!/bin/bash
# Stop 40: the README headline's sliced chain on the one-table code (stop 32's commands)
set -x
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
S=/work/runs40
T="/usr/bin/time -f %e_s_%M_KB"
$T $A recover $S/sliced --full --steps 200 --eval-every 20 -o $S/full200 --overwrite
$T $A quantize $S/full200 -o $S/q200 --overwrite
$A inspect $S/q200 --format json > $S/q200.inspect.json
$T $A eval $S/full200 $S/q200 --tasks wikitext2 --limit 10 --dtype float32 --format json > $S/ppl200.json
$T $A bench smollm2-135m $S/q200 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > $S/bench200.json
$T $A eval $S/q200 --tasks wikitext2 --dtype float32 --format json > $S/ppl200_full.json
echo done
