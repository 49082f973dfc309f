#!/usr/bin/env bash
# Issue 9: the best-perplexity combination within the budget on this CPU: PCA on self-generated
# text (fifth round) + 200 steps of full-weight KD (tenth round).
source /work/env.sh
O=/work/main/docs/local-2026-12-05c
R=/work/runs/r32
L="flock /work/heavy.lock"
cd /work/main
$L /usr/bin/time -v .venv/bin/andactl slice smollm2-135m --ratio 0.25 --cal-data self --cal-samples 16 --cal-seqlen 1024 \
  -o $R/selfcal > $O/selfcal_slice.out 2> $O/selfcal_slice.err
$L /usr/bin/time -v .venv/bin/andactl recover $R/selfcal --full --steps 200 --eval-every 20 \
  -o $R/selfcal_full200 > $O/selfcal_recover.out 2> $O/selfcal_recover.err
$L .venv/bin/andactl eval $R/selfcal $R/selfcal_full200 --tasks wikitext2 --limit 10 --dtype float32 \
  > $O/selfcal_eval10.out 2> $O/selfcal_eval10.err
$L .venv/bin/andactl eval $R/selfcal_full200 --tasks wikitext2 --dtype float32 > $O/selfcal_evalfull.out 2> $O/selfcal_evalfull.err
$L .venv/bin/andactl eval $R/selfcal_full200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 \
  > $O/selfcal_zs.out 2> $O/selfcal_zs.err
