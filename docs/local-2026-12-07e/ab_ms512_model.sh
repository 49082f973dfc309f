#!/bin/bash
# Model-level A/B of the AVX-512 magnitude/sign kernels: andactl bench on dense SmolLM2 and the
# demo's three packed artifacts (Q1 = quantize --bits 8 7 8 8: three of four module types at M = 8;
# pruned -> packed at [8,7,8,8]; sliced -> packed at [7,8,9,7]), base (a clone of 4d56778 at
# /work/ab/s57base, run from there) and new alternating, 1 thread; then the same perplexity from both.
# Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-07e
R=/work/main/runs/demo
for run in 1 2; do
  (cd /work/ab/s57base && PYTHONPATH=/work/ab/s57base /work/main/.venv/bin/python -m andactl bench smollm2-135m $R/quantized $R/pruned_packed $R/packed --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json) > $D/ab_model_base_$run.json 2> $D/ab_model_base_$run.err
  .venv/bin/python -m andactl bench smollm2-135m $R/quantized $R/pruned_packed $R/packed --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > $D/ab_model_new_$run.json 2> $D/ab_model_new_$run.err
done
(cd /work/ab/s57base && PYTHONPATH=/work/ab/s57base /work/main/.venv/bin/python -m andactl eval $R/quantized $R/packed --tasks wikitext2 --limit 2 --dtype float32 --format json) > $D/ppl_base.json 2> $D/ppl_base.err
.venv/bin/python -m andactl eval $R/quantized $R/packed --tasks wikitext2 --limit 2 --dtype float32 --format json > $D/ppl_new.json 2> $D/ppl_new.err
