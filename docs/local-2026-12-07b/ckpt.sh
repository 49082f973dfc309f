#!/bin/bash
# Stop 54: the default recovery on stop 46's fisher + mix slice with the new default (the layers whose
# activations fit in 512 MiB keep them) against --checkpoint (every layer recomputes, the old default),
# back to back, each alone under the shared lock; then --dry-run's estimates of both.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs54; F=/work/runs46/fmix
for v in auto ckpt; do
  flag=""; [ $v = ckpt ] && flag=--checkpoint
  rm -rf $R/def_$v
  flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full $flag -o $R/def_$v > def_$v.out 2> def_$v.err
  cp $R/def_$v/report.json def_$v.report.json
  flock /work/heavy.lock andactl recover $F --full $flag --dry-run -o $R/dry_$v --format json > def_$v.dry.json 2> def_$v.dry.err
done
cmp $R/def_auto/model.safetensors $R/def_ckpt/model.safetensors && echo "weights identical" > same.txt || echo "weights differ" > same.txt
echo done
