#!/bin/bash
# Slicing ratio frontier on SmolLM2: slice (alpaca 16x1024, as the 25% reference) -> recover --full (defaults, 40 steps)
# -> WikiText-2 first 10 windows (float32) and zero-shot mean 3 (500 docs, float32).
cd /work/main && source /work/env.sh
R=/work/runs39
for r in 0.10 0.15 0.20; do
  flock /work/heavy.lock /usr/bin/time -v .venv/bin/andactl slice smollm2-135m --ratio $r --cal-samples 16 --cal-seqlen 1024 -o $R/s$r > /work/s39/slice_$r.out 2> /work/s39/slice_$r.err
  flock /work/heavy.lock /usr/bin/time -v .venv/bin/andactl recover $R/s$r --full -o $R/rec$r > /work/s39/rec_$r.out 2> /work/s39/rec_$r.err
  echo "ratio $r: slice $(grep -o 'Elapsed.*' /work/s39/slice_$r.err) / recover $(grep -o 'Elapsed.*' /work/s39/rec_$r.err) $(grep 'Maximum resident' /work/s39/rec_$r.err)"
done
flock /work/heavy.lock .venv/bin/andactl eval $R/s0.10 $R/rec0.10 $R/s0.15 $R/rec0.15 $R/s0.20 $R/rec0.20 /work/runs38/sliced /work/runs38/full32 --tasks wikitext2 --limit 10 --dtype float32 > /work/s39/ratios_ppl.txt 2> /work/s39/ratios_ppl.err
cat /work/s39/ratios_ppl.txt
flock /work/heavy.lock .venv/bin/andactl eval $R/rec0.10 $R/rec0.15 $R/rec0.20 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 > /work/s39/ratios_zs.txt 2> /work/s39/ratios_zs.err
cat /work/s39/ratios_zs.txt
