#!/bin/bash
# after queue3: bench_gemm 1T again + andactl bench on current artifacts (issue 11)
while ! grep -q tables-done /work/k11/tables.log 2>/dev/null; do sleep 20; done
. /work/env.sh
rm -rf /tmp/bench-k2 && git clone -q /work/main /tmp/bench-k2 && cd /tmp/bench-k2 && git log -1 --format=%H > /work/k11/measure2.log
PY=/work/main/.venv/bin/python
S=/work/sw10/sweep
flock /work/heavy.lock bash -c "
lscpu | grep 'Model name'; uptime
$PY benchmarks/bench_gemm.py --threads 1 --repeat 3 --format json > /work/k11/gemm2_1t.json
uptime
$PY -m andactl bench smollm2-135m $S/sliced/r0.25 $S/artifacts/r0-gptq-t0.05 $S/artifacts/r0-gptq-t0.01 $S/artifacts/r0.25-gptq-t0.05 /work/sw10/w4a16-gptq \
   --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > /work/k11/bench2_1t.json
uptime" >> /work/k11/measure2.log 2>&1
echo measure2-done >> /work/k11/measure2.log
