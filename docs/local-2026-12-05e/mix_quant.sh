#!/bin/bash
# The whole chain on the mixed-calibration 200-step model: `andactl quantize` at its defaults, then
# WikiText-2 (10 windows and the full test set) and mean 3. Run under the shared lock.
set -e
D=docs/local-2026-12-05e
R=/work/runs/r34
/usr/bin/time -v .venv/bin/andactl quantize $R/mix200 -o $R/mix200_q1 > $D/mix_quant.out 2> $D/mix_quant.err
.venv/bin/andactl eval $R/mix200_q1 --tasks wikitext2 --limit 10 --dtype float32 > $D/mix_q1_wt2.txt 2> $D/mix_q1_wt2.err
.venv/bin/andactl eval $R/mix200_q1 --tasks wikitext2 --dtype float32 > $D/mix_q1_wt2_full.txt 2> $D/mix_q1_wt2_full.err
.venv/bin/andactl eval $R/mix200_q1 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 > $D/mix_q1_zeroshot.txt 2> $D/mix_q1_zeroshot.err
