#!/bin/bash
# The headline's Q1 on the VML fix: the default quantize twice (same bytes?), then WikiText-2 on 8 windows, float32.
cd /work/main && source /work/env.sh
for i in 1 2; do
  rm -rf /work/runs39/q1_$i
  flock /work/heavy.lock /usr/bin/time -v .venv/bin/andactl quantize smollm2-135m -o /work/runs39/q1_$i > /work/s39/q1_$i.out 2> /work/s39/q1_$i.err
  echo "q1 run $i: $(sha256sum /work/runs39/q1_$i/model.safetensors | cut -c1-16) $(grep -o 'Elapsed.*' /work/s39/q1_$i.err)"
done
flock /work/heavy.lock .venv/bin/andactl eval /work/runs39/q1_1 --tasks wikitext2 --limit 8 --dtype float32 > /work/s39/q1_ppl.txt 2> /work/s39/q1_ppl.err
cat /work/s39/q1_ppl.txt
