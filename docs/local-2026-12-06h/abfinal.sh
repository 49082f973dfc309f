#!/bin/bash
# Stop 50's recovery path (float32 torch heads, weights cast again in the recompute) vs this stop's final
# code, one after the other, each alone under the shared lock; 10 WikiText-2 windows of the final model;
# --dry-run of the command on the idle machine.
set -e
FMIX=/work/runs46/fmix; OUT=/work/runs51; mkdir -p $OUT
D=$(dirname $0)
NOSPLIT=1 NOCASTHOLD=1 flock /work/heavy.lock /usr/bin/time -f "%e s wall, %M KB max RSS" python $D/ab.py recover $FMIX --full -o $OUT/fin_base --overwrite > $D/abfinal_base.log 2>&1
flock /work/heavy.lock /usr/bin/time -f "%e s wall, %M KB max RSS" andactl recover $FMIX --full -o $OUT/fin_new --overwrite > $D/abfinal_new.log 2>&1
cp $OUT/fin_base/report.json $D/abfinal_base.report.json; cp $OUT/fin_new/report.json $D/abfinal_new.report.json
flock /work/heavy.lock andactl eval $OUT/fin_new --tasks wikitext2 --limit 10 --dtype float32 > $D/abfinal_ppl.txt 2>$D/abfinal_ppl.log
flock /work/heavy.lock andactl recover $FMIX --full --dry-run -o $OUT/dry > $D/dry_final.txt 2>&1
