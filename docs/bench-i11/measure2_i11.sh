#!/usr/bin/env bash
# Issue 11, second measurement after reverting the AVX2 tiles to 4/2 tokens: bench_gemm 1T/2T, andactl bench 1T.
set -x
R=/work/i11/runs
rm -rf /tmp/i11snap2 && mkdir -p /tmp/i11snap2 && (cd /work/i11 && git ls-files -co --exclude-standard | grep -v '^runs/' | xargs -I{} cp --parents {} /tmp/i11snap2/)
cd /tmp/i11snap2 && ln -s $R runs && git -C /work/i11 log -1 --format=%H
export PYTHONPATH=/tmp/i11snap2 ANDACTL_CACHE_DIR=/work/cache-i11 ANDACTL_DATA_DIR=/work/shared/data TOKENIZERS_PARALLELISM=false
PY=/work/main/.venv/bin/python
uptime
$PY -c "from andactl.kernels import build; print(build.load().ok)"
uptime
$PY benchmarks/bench_gemm.py --threads 1 --repeat 3 --format json > runs/gemm2_1t.json
uptime
$PY benchmarks/bench_gemm.py --threads 2 --repeat 3 --format json > runs/gemm2_2t.json
uptime
$PY -m andactl bench smollm2-135m runs/sliced25 runs/packed_w4a6 runs/sliced25_w4a6 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > runs/bench2_1t.json
uptime
