#!/bin/bash
# stop 48: zero-shot on full sets (piqa, arc_easy; hellaswag's first 2000 documents), then winogrande and arc_challenge full,
# for dense and the best 25% slice (stop 46's fisher+mix slice after recover --full --steps 200)
set -e
source /work/env.sh
cd /work/main
A=.venv/bin/andactl
R=/work/runs48
run() {  # name model out tasks [limit...]
  local n=$1 m=$2 o=$3 t=$4; shift 4
  /usr/bin/time -f "$n $t $*: %e s wall, %M KB" $A eval $m --tasks $t "$@" --batch-size 16 --dtype float32 --format json --output_path $R/${o}_$n.json 2> $R/${o}_$n.err
  tail -1 $R/${o}_$n.err
}
for pair in "dense smollm2-135m" "fmix_rec200 /work/runs46/fmix_rec200"; do
  set -- $pair
  run $1 $2 zsfull piqa,arc_easy
  run $1 $2 zsh2000 hellaswag --limit 2000
done
for pair in "dense smollm2-135m" "fmix_rec200 /work/runs46/fmix_rec200"; do
  set -- $pair
  run $1 $2 wafull winogrande,arc_challenge
done
