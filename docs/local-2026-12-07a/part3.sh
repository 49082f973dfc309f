#!/bin/bash
# Stop 53, part 3 (after part2.sh): the refitted --dry-run against the default self-text run, measured again on
# the final sampling code (its log line gives the sampling's own time); the weights compared with selftext.sh's run.
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
R=/work/runs53
F=/work/runs46/fmix
while pgrep -f part2.sh > /dev/null; do sleep 10; done
flock /work/heavy.lock andactl recover $F --full --train-data self --dry-run --format json -o $R/self40b > self40b.dry.json 2> self40b.dry.err
rm -rf $R/self40b
flock /work/heavy.lock /usr/bin/time -v andactl recover $F --full --train-data self -o $R/self40b > self40b.out 2> self40b.err
cp $R/self40b/report.json self40b.report.json
python - > self40b_same.txt <<'PY'
from safetensors.torch import load_file
a, b = load_file("/work/runs53/self40/model.safetensors"), load_file("/work/runs53/self40b/model.safetensors")
print("tensors", len(a), "identical", a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a))
PY
flock /work/heavy.lock andactl recover $F --full --train-data self --minutes 20 --dry-run --format json -o $R/x > self20b.dry.json 2> self20b.dry.err
echo done
