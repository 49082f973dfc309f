#!/usr/bin/env bash
# Issue 11 measurements, one flock acquisition: artifacts (small calibration), bench_gemm 1T/2T, andactl bench.
set -x
R=/work/i11/runs
rm -rf /tmp/i11snap && mkdir -p /tmp/i11snap && (cd /work/i11 && git ls-files -co --exclude-standard | grep -v '^runs/' | xargs -I{} cp --parents {} /tmp/i11snap/)
cd /tmp/i11snap && ln -s $R runs && git -C /work/i11 log -1 --format=%H
export PYTHONPATH=/tmp/i11snap ANDACTL_CACHE_DIR=/work/cache-i11 ANDACTL_DATA_DIR=/work/shared/data TOKENIZERS_PARALLELISM=false
PY=/work/main/.venv/bin/python
uptime
[ -f runs/sliced25/config.json ] || $PY -m andactl slice smollm2-135m --ratio 0.25 --cal-samples 8 --cal-seqlen 256 -o runs/sliced25 --overwrite
[ -f runs/packed_w4a6/config.json ] || $PY -m andactl quantize smollm2-135m --bits 6 6 6 6 --weight-method rtn -o runs/packed_w4a6 --overwrite
[ -f runs/sliced25_w4a6/config.json ] || $PY -m andactl quantize runs/sliced25 --bits 6 6 6 6 --weight-method rtn -o runs/sliced25_w4a6 --overwrite
uptime
$PY benchmarks/bench_gemm.py --threads 1 --repeat 3 --format json > runs/gemm_1t.json
uptime
$PY benchmarks/bench_gemm.py --threads 2 --repeat 3 --format json > runs/gemm_2t.json
uptime
$PY -m andactl bench smollm2-135m runs/sliced25 runs/packed_w4a6 runs/sliced25_w4a6 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > runs/bench_1t.json
uptime
$PY -m andactl bench smollm2-135m runs/sliced25 runs/packed_w4a6 runs/sliced25_w4a6 --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 2 --format json > runs/bench_2t.json
uptime
