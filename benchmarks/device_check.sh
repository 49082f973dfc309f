#!/bin/bash
# The GPU machine's checks of issue 11, as ONE call of the device tool (its time is scarce).
# Sections (default: cuda cpu model): probe = benchmarks/amx_probe.cpp (where the AMX GEMM's
# time goes); cuda = the CUDA tests + benchmarks/bench_cuda.py; cpu = the CPU kernel
# tests at every ISA level that machine's CPU has (AVX-512 / VNNI / AMX where present), then
# benchmarks/bench_gemm.py at 1 and 2 threads, and once more at 2 threads capped to AVX-512 VNNI
# (the AMX path against the VNNI one in the same run); model = a SmolLM2-135M-shaped llama, dense
# bf16 vs packed, on that machine's CPU pinned to 2 cores (bench_cuda.py --device cpu). Each step
# has its own time limit and writes its own file, so a step that fails or runs long never loses
# the others.
#
#   bash benchmarks/device_check.sh OUTDIR [cuda] [cpu] [probe] [model]   # device: ... $OUT cpu model
set -u
OUT=${1:?usage: device_check.sh OUTDIR [cuda] [cpu] [probe] [model]}
shift
SECTIONS=${*:-cuda cpu model}
mkdir -p "$OUT"
export PYTHONPATH=$PWD ANDACTL_CACHE_DIR=/tmp/andactl-ext PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PY:-python3}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
step() {  # step SECONDS FILE COMMAND...
  local limit=$1 file=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$file" 2>&1
  echo "step $file: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/facts.txt"
}
{ date -u; lscpu; grep -m1 '^flags' /proc/cpuinfo; nvidia-smi -L; git log -1 --format='commit %H %s';
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
} > "$OUT/facts.txt" 2>&1
if has cuda; then
  step 180 tests_cuda.log $PY -m pytest -q -p no:cacheprovider tests/test_kernels_cuda.py tests/test_nvcc_compile.py
  step 150 bench_cuda.log $PY benchmarks/bench_cuda.py --out "$OUT/bench_cuda.json"
fi
if has cpu; then
  # CPU-only build (no GPU visible). The three error-path tests that crash that image's process
  # (docs/BENCH.md, "First run on AMX hardware") run apart, each in its own process.
  CRASHERS="test_pack_rejects_nonfinite or test_prepacked_wrapper_errors or test_table_linear_rejects_bad_operands"
  step 240 tests_cpu.log env CUDA_VISIBLE_DEVICES= $PY -m pytest -q -p no:cacheprovider tests/test_kernels_cpp.py \
    tests/test_fused_linear.py tests/test_isa_check.py tests/test_table_linear.py -k "not ($CRASHERS)"
  for t in test_kernels_cpp.py::test_pack_rejects_nonfinite test_kernels_cpp.py::test_prepacked_wrapper_errors \
           test_table_linear.py::test_table_linear_rejects_bad_operands; do
    step 60 "crash_${t##*::}.log" env CUDA_VISIBLE_DEVICES= $PY -m pytest -q -p no:cacheprovider "tests/$t"
  done
  step 90 bench_gemm_t1.log env CUDA_VISIBLE_DEVICES= $PY benchmarks/bench_gemm.py --threads 1 --repeat 3
  step 90 bench_gemm_t2.log env CUDA_VISIBLE_DEVICES= $PY benchmarks/bench_gemm.py --threads 2 --repeat 3
  step 90 bench_gemm_t2_vnni.log env CUDA_VISIBLE_DEVICES= ANDA_CPU_ISA=avx512 $PY benchmarks/bench_gemm.py --threads 2 --repeat 3
fi
if has probe; then  # where the AMX GEMM's time goes (benchmarks/amx_probe.cpp), one thread
  step 60 probe_build.log g++ -O3 -std=c++17 -Ikernels/csrc benchmarks/amx_probe.cpp kernels/csrc/anda_kern.cpp \
    kernels/csrc/anda_gemm_kern.cpp kernels/csrc/anda_pack_avx2.cpp kernels/csrc/anda_quant.cpp \
    kernels/csrc/table_kern.cpp -o /tmp/amx_probe
  step 60 probe_c1.log taskset -c 2 /tmp/amx_probe 2048 576 1536 1
  step 60 probe_c2.log taskset -c 2 /tmp/amx_probe 2048 576 1536 2
fi
if has model; then
  step 240 bench_model_cpu2.log env CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=2 taskset -c 0,1 \
    $PY benchmarks/bench_cuda.py --device cpu --sections model --threads 2 --out "$OUT/bench_model_cpu2.json"
fi
