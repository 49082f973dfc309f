#!/bin/bash
# intermediate-layer distillation: the default 40-step --full KD recovery + INTER x relative layer-output error
cd /work/main && source /work/env.sh
for lam in 0.1 1; do
  d=/work/s36/inter_$lam
  /usr/bin/time -v env INTER=$lam .venv/bin/python /work/s36/inter.py recover /work/runs/chain/sliced --full -o $d --overwrite > $d.out 2> $d.err
  grep -E 'inter:|Elapsed|Maximum res|step 40/40' $d.err
done
.venv/bin/andactl eval /work/s36/inter_0.1 /work/s36/inter_1 --tasks wikitext2 --limit 10 --dtype float32 2>&1 | grep -E 'ppl|windows'
