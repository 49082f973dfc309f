#!/bin/bash
# Stop 55, on the final code: make demo (timed), then alpaca --minutes 20 with the 10% reserve and
# only the training row scaled; 10 WikiText-2 windows and 500 documents per zero-shot task.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs55
(cd /work/main && flock /work/heavy.lock bash -c "time make demo") > demo.log 2>&1
rm -rf $R/alpaca20b
flock /work/heavy.lock /usr/bin/time -v andactl recover /work/runs46/fmix --full --minutes 20 --eval-every 50 -o $R/alpaca20b > alpaca20b.out 2> alpaca20b.err
cp $R/alpaca20b/report.json alpaca20b.report.json
flock /work/heavy.lock andactl eval $R/alpaca20b --tasks wikitext2 --limit 10 --dtype float32 --format json > alpaca20b_ppl.json 2> alpaca20b_ppl.err
flock /work/heavy.lock andactl eval $R/alpaca20b --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > alpaca20b_zs.json 2> alpaca20b_zs.err
echo done
