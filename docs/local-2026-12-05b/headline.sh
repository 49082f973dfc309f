#!/usr/bin/env bash
source /work/env.sh
cd /work/main
O=docs/local-2026-12-05b
for i in 1 2; do
  .venv/bin/andactl bench smollm2-135m /work/runs/hl/q1 /work/runs/hl/q5 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 > $O/headline_$i.txt 2>$O/headline_$i.err
done
.venv/bin/andactl bench smollm2-135m /work/runs/chain/sliced /work/runs/hl/q1 --threads 2 --repeat 3 > $O/issue_default_1.txt 2>$O/issue_default_1.err
