#!/bin/bash
# Stop 52: is the --minutes 20 model's WikiText-2 figure the split head products' doing? The same 264 steps with torch's
# float32 GEMM for the heads (stop 50's path; the held bf16 casts are bit-identical), then the same 10-window eval.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs52
rm -rf $R/f264
flock /work/heavy.lock /usr/bin/time -v andactl recover /work/runs46/fmix --full --steps 264 --eval-every 50 --head-products float32 -o $R/f264 > f264.out 2> f264.err
cp $R/f264/report.json f264.report.json
flock /work/heavy.lock andactl eval $R/f264 --tasks wikitext2 --limit 10 --dtype float32 --format json > f264_ppl.json 2> f264_ppl.err
echo done
