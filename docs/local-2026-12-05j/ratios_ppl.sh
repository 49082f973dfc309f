#!/bin/bash
# The ratio sweep's WikiText-2 figures again, as JSON (the first run's table was cut by the terminal width).
cd /work/main && source /work/env.sh
while pgrep -f ratios.sh > /dev/null; do sleep 5; done
R=/work/runs39
flock /work/heavy.lock .venv/bin/andactl eval $R/s0.10 $R/rec0.10 $R/s0.15 $R/rec0.15 $R/s0.20 $R/rec0.20 /work/runs38/sliced /work/runs38/full32 --tasks wikitext2 --limit 10 --dtype float32 --format json > /work/s39/ratios_ppl.json 2> /work/s39/ratios_ppl2.err
