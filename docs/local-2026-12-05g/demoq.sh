#!/bin/bash
cd /work/main && source /work/env.sh
A=.venv/bin/andactl
for cfg in "8 512" "16 512" "32 512"; do set -- $cfg
d=/work/s36/dq_$1x$2
/usr/bin/time -v $A quantize runs/demo/recovered --bits 7 8 9 7 --cal-samples $1 --cal-seqlen $2 -o $d --overwrite > $d.out 2> $d.err
grep -E 'Elapsed|Maximum res' $d.err
done
$A eval runs/demo/packed /work/s36/dq_8x512 /work/s36/dq_16x512 /work/s36/dq_32x512 --tasks wikitext2 --seqlen 512 --limit 4 2>&1 | grep -E 'ppl|windows'
