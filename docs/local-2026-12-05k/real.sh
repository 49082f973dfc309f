#!/bin/bash
# Stop 40: one table for head + embedding on SmolLM2-135M at 25% (against stop 38's untied artifacts)
set -x
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
S=/work/runs40
T="/usr/bin/time -f %e_s_%M_KB"
$T $A slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 -o $S/sliced --overwrite
$T $A recover $S/sliced --full -o $S/rec --overwrite
$T $A quantize $S/rec --bits 8 7 8 8 -o $S/q --overwrite
$T $A quantize /work/runs38/full32 --bits 8 7 8 8 -o $S/q_untied --overwrite
for m in $S/sliced $S/rec $S/q /work/runs38/sliced /work/runs38/full32 $S/q_untied; do
  $A inspect $m --format json > $S/$(basename $m)_$(echo $m | md5sum | cut -c1-4).inspect.json
done
$T $A eval /work/runs38/sliced $S/sliced /work/runs38/full32 $S/rec $S/q_untied $S/q --tasks wikitext2 --limit 10 --dtype float32 --format json > $S/ppl.json
echo done
