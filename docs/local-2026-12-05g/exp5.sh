#!/bin/bash
cd /work/main && source /work/env.sh
for cfg in "128 8" "64 16"; do set -- $cfg
d=/work/s36/seq$1
/usr/bin/time -v .venv/bin/andactl recover /work/runs/chain/sliced --full --seqlen $1 --batch-size $2 -o $d --overwrite > $d.out 2> $d.err
grep -E 'Elapsed|Maximum resident' $d.err; grep -o 'held_out_after[^,]*' $d/report.json
done
.venv/bin/andactl eval /work/s36/seq128 /work/s36/seq64 --tasks wikitext2 --limit 10 --dtype float32 2>&1 | grep -E 'ppl|windows'
