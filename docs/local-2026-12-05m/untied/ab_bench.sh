#!/bin/bash
# andactl bench of the packed untied OPT (head 600 wide) with HEAD~'s table kernels (base: 13cf941's csrc) vs this stop's, alternating.
cd /work/main && source /work/env.sh && source .venv/bin/activate
W=/work/s42/untied
b() { andactl bench $W/q_sh --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > $W/bench_$1.json 2> $W/bench_$1.err; }
for i in 1 2; do
  git checkout -q 13cf941 -- kernels/csrc; andactl kernels build >/dev/null 2>&1; b base$i
  git checkout -q HEAD -- kernels/csrc; andactl kernels build >/dev/null 2>&1; b new$i
done
