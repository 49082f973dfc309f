#!/bin/bash
# Stop 58, AMD EPYC Zen 4: AdamW beta2 (0.999 in torch and here; 0.95 is the usual LLM-training value) on a
# prototype of passes/recover_train.py (beta2_proto.diff: ANDACTL_PROTO_BETA2=B). The default recovery
# (40 steps, --full) of stop 56's slice
# (/work/runs56/fmix), against stop 56's default run (beta2 0.999: 61.80 on 10 windows, 87.0%). Each step
# alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs58; F=/work/runs56/fmix
mkdir -p $R
for t in "$@"; do
  v=b$t
  rm -rf $R/$v
  ANDACTL_PROTO_BETA2=$t flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full -o $R/$v > $v.out 2> $v.err
  cp $R/$v/report.json $v.report.json
  flock /work/heavy.lock andactl eval $R/$v --tasks wikitext2 --limit 10 --dtype float32 --format json > ${v}_ppl.json 2> ${v}_ppl.err
  flock /work/heavy.lock andactl eval $R/$v --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > ${v}_zs.json 2> ${v}_zs.err
done
echo done > beta2_$*.done
