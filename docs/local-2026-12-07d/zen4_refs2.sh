#!/bin/bash
# Stop 56, after zen4_refs.sh: dense zero-shot on this CPU (500 documents per task, float32), and the
# recovery estimates again with the AVX512-BF16 shares (d819c3b).
cd "$(dirname "$0")"
source /work/env.sh; source /work/main/.venv/bin/activate
while [ ! -f zen4_refs.done ]; do sleep 20; done
flock /work/heavy.lock andactl eval smollm2-135m --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > dense_zs.json 2> dense_zs.err
sleep 60  # let the load average settle before the probes
flock /work/heavy.lock andactl recover /work/runs56/fmix --full --dry-run -o /tmp/dry_def --format json > def.dry2.json 2> def.dry2.err
flock /work/heavy.lock andactl recover /work/runs56/fmix --full --steps 190 --eval-every 50 --dry-run -o /tmp/dry_190 --format json > alpaca20.dry2.json 2> alpaca20.dry2.err
echo done > zen4_refs2.done
