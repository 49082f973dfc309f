#!/bin/bash
# Stop 57, AMD EPYC Zen 4: the training sequence length against the zero-shot tasks (round 14 measured
# it on perplexity only): the default recovery (40 steps, 1024 tokens per step) of stop 56's slice
# (/work/runs56/fmix) with 128 x 8 and 64 x 16 instead of 256 x 4; 10 WikiText-2 windows and 500
# documents per zero-shot task, as stop 56's default (docs/local-2026-12-07d/def_*). Each step alone
# under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs57; F=/work/runs56/fmix
mkdir -p $R
for v in s128 s64; do
  case $v in s128) flag="--seqlen 128 --batch-size 8";; s64) flag="--seqlen 64 --batch-size 16";; esac
  rm -rf $R/$v
  flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full $flag -o $R/$v > $v.out 2> $v.err
  cp $R/$v/report.json $v.report.json
  flock /work/heavy.lock andactl eval $R/$v --tasks wikitext2 --limit 10 --dtype float32 --format json > ${v}_ppl.json 2> ${v}_ppl.err
  flock /work/heavy.lock andactl eval $R/$v --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > ${v}_zs.json 2> ${v}_zs.err
done
echo done > seqlen_zs.done
