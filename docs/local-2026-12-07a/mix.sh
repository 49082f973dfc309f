#!/bin/bash
# Stop 53: recover --train-data mix (half alpaca, half sampled from the teacher) in the 20-minute budget on stop 46's
# fisher + mix slice, evaluated as the self and alpaca runs (10 windows, 500 documents per task, then the full sets).
# Started after the fresh-clone CI; every step alone under the shared lock.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs53
F=/work/runs46/fmix
while pgrep -f "ci-check|\.ci/run" > /dev/null; do sleep 10; done
rm -rf $R/mix20
flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --train-data mix --minutes 20 --eval-every 50 -o $R/mix20 > mix20.out 2> mix20.err
cp $R/mix20/report.json mix20.report.json
flock /work/heavy.lock andactl eval $R/mix20 --tasks wikitext2 --limit 10 --dtype float32 --format json > mix20_ppl.json 2> mix20_ppl.err
flock /work/heavy.lock andactl eval $R/mix20 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > mix20_zs.json 2> mix20_zs.err
flock /work/heavy.lock andactl eval $R/mix20 --tasks wikitext2 --dtype float32 --format json > mix20_pplfull.json 2> mix20_pplfull.err
flock /work/heavy.lock andactl eval $R/mix20 --tasks piqa,arc_easy --batch-size 16 --dtype float32 --format json > mix20_zsfull.json 2> mix20_zsfull.err
flock /work/heavy.lock andactl eval $R/mix20 --tasks hellaswag --limit 2000 --batch-size 16 --dtype float32 --format json > mix20_hs2000.json 2> mix20_hs2000.err
echo done
