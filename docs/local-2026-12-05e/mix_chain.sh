#!/bin/bash
# PCA calibrated on half alpaca, half self-generated text (run_mix.py patches build_calibration),
# then stop 32's 200-step full recovery, then WikiText-2 on 10 windows beside the alpaca and self
# slices' 200-step models, then mean 3. Run from the repository root under the shared lock.
set -e
D=docs/local-2026-12-05e
R=/work/runs/r34
/usr/bin/time -v .venv/bin/python $D/run_mix.py slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 -o $R/mix > $D/mix_slice.out 2> $D/mix_slice.err
/usr/bin/time -v .venv/bin/andactl recover $R/mix --full --steps 200 --eval-every 20 -o $R/mix200 > $D/mix_recover.out 2> $D/mix_recover.err
.venv/bin/andactl eval $R/mix $R/mix200 /work/runs/r32/full200 /work/runs/r32/selfcal_full200 --tasks wikitext2 --limit 10 --dtype float32 > $D/mix_wt2.txt 2> $D/mix_wt2.err
.venv/bin/andactl eval $R/mix200 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 > $D/mix_zeroshot.txt 2> $D/mix_zeroshot.err
