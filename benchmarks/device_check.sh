#!/bin/bash
# The GPU machine's checks of issue 11, as ONE call of the device tool (its time is scarce):
# facts (CPU model and ISA, GPU, versions), the CUDA tests, benchmarks/bench_cuda.py, the CPU
# kernel tests at every ISA level that machine's CPU has (AVX-512 / VNNI / AMX where present),
# then benchmarks/bench_gemm.py at 1 and 2 threads. Each step has its own time limit and writes
# its own file, so a step that fails or runs long never loses the others.
#
#   bash benchmarks/device_check.sh OUTDIR        # on the device: bash benchmarks/device_check.sh $OUT
set -u
OUT=${1:?usage: device_check.sh OUTDIR}
mkdir -p "$OUT"
export PYTHONPATH=$PWD ANDACTL_CACHE_DIR=/tmp/andactl-ext PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PY:-python3}
step() {  # step SECONDS FILE COMMAND...
  local limit=$1 file=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$file" 2>&1
  echo "step $file: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/facts.txt"
}
{ date -u; lscpu; grep -m1 '^flags' /proc/cpuinfo; nvidia-smi -L;
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
} > "$OUT/facts.txt" 2>&1
step 180 tests_cuda.log $PY -m pytest -q -p no:cacheprovider tests/test_kernels_cuda.py tests/test_nvcc_compile.py
step 150 bench_cuda.log $PY benchmarks/bench_cuda.py --out "$OUT/bench_cuda.json"
step 120 tests_cpu.log $PY -m pytest -q -p no:cacheprovider tests/test_kernels_cpp.py tests/test_fused_linear.py tests/test_isa_check.py
step 60 bench_gemm_t1.log $PY benchmarks/bench_gemm.py --threads 1 --repeat 3
step 60 bench_gemm_t2.log $PY benchmarks/bench_gemm.py --threads 2 --repeat 3
