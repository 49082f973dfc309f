#!/bin/bash
# Issue 11 after the AVX2 micro-kernel rewrite: bench_gemm 1T/2T and andactl bench 1T (AMD EPYC Zen 3 AVX2)
. /work/env.sh
rm -rf /tmp/bench-k && git clone -q /work/main /tmp/bench-k && cd /tmp/bench-k && git log -1 --format=%H
PY=/work/main/.venv/bin/python
EXTRA=$(ls -d /work/sw10/sweep/artifacts/r0-gptq-t0.01 /work/sw10/w4a16-gptq 2>/dev/null | tr "\n" " ")
R=/work/k11
lscpu | grep "Model name"; uptime
$PY -c "from andactl.kernels import build; print(build.load().ok)"
uptime
$PY benchmarks/bench_gemm.py --threads 1 --repeat 3 --format json > $R/gemm_1t.json
uptime
$PY benchmarks/bench_gemm.py --threads 2 --repeat 3 --format json > $R/gemm_2t.json
uptime
$PY -m andactl bench smollm2-135m /work/i11/runs/sliced25 /work/i11/runs/packed_w4a6 /work/i11/runs/sliced25_w4a6 $EXTRA \
   --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > $R/bench_1t.json
uptime
