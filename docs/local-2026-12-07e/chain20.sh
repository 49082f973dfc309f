#!/bin/bash
# Stop 57, AMD EPYC Zen 4: the whole chain with the 20-minute recovery (stop 56's --minutes 20 model,
# /work/runs56/alpaca20, 190 steps in 17 min 34 s) quantized at quantize's defaults (INT4 GPTQ
# asymmetric g64 + the Anda search at 1% on the energy budget, INT8 head/embedding table), then the
# full WikiText-2 test set and 500 documents per zero-shot task in float32, as the headline's rows.
# Each step alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs57; Q=$R/alpaca20_q
rm -rf $Q
flock /work/heavy.lock /usr/bin/time -v andactl quantize /work/runs56/alpaca20 -o $Q > chain20_q.out 2> chain20_q.err
cp $Q/report.json chain20_q.report.json
flock /work/heavy.lock andactl inspect $Q > chain20_inspect.txt 2>&1
flock /work/heavy.lock andactl eval $Q --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > chain20_zs.json 2> chain20_zs.err
flock /work/heavy.lock andactl eval $Q --tasks wikitext2 --dtype float32 --format json > chain20_pplfull.json 2> chain20_pplfull.err
echo done > chain20.done
