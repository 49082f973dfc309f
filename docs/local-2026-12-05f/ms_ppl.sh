#!/bin/bash
# End-to-end check of the AVX2 magnitude/sign kernel: Q1's WikiText-2 perplexity (first 2 windows,
# float32) at ANDA_CPU_ISA=avx2 with the code before it (a clone of a7455d6) and with this one: the
# same integer sums give the same printed perplexity. Run from the repository root under the lock.
set -e
D=docs/local-2026-12-05f
ARGS="eval /work/runs/hl/q1 --tasks wikitext2 --limit 2 --dtype float32 --format json"
(cd /work/ab/s34base && ANDA_CPU_ISA=avx2 /work/main/.venv/bin/python -m andactl $ARGS) > $D/ms_ppl_base.txt 2> $D/ms_ppl_base.err
ANDA_CPU_ISA=avx2 .venv/bin/python -m andactl $ARGS > $D/ms_ppl_new.txt 2> $D/ms_ppl_new.err
