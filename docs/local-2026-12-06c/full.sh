#!/bin/bash
# Stop 46: full WikiText-2 test set (float32) of the re-measured chain, then winogrande / arc_challenge.
set -x
cd /work/main && . /work/env.sh
A=.venv/bin/andactl
R=/work/runs46
S=/work/s46
for m in fmix_rec200 fmix_rec fmix_q200; do
  date
  $A eval $R/$m --tasks wikitext2 --dtype float32 --output_path $S/${m}_full.json
done
date
$A eval $R/fmix_rec $R/fmix_rec200 --tasks winogrande,arc_challenge --limit 500 --batch-size 16 --dtype float32 --output_path $S/fmix_rec_wa.json
date
