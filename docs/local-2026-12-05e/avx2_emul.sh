#!/bin/bash
# Issue 11's AVX2-only targets, emulated on this AMX Xeon: andactl capped at its AVX2 level and torch
# capped to AVX2 (ATen kernels, oneDNN and MKL), vs the same script uncapped, alternating.
# Run from the repository root under the shared lock: bash docs/local-2026-12-05e/avx2_emul.sh
set -e
D=docs/local-2026-12-05e
CAP="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ANDA_CPU_ISA=avx2"
for run in 1 2; do
  for t in 1 2; do
    env $CAP .venv/bin/python benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/gemm_avx2_t${t}_$run.txt
    env $CAP .venv/bin/python -c "import torch; print('# torch capability', torch.backends.cpu.get_cpu_capability())" >> $D/gemm_avx2_t${t}_$run.txt
    .venv/bin/python benchmarks/bench_gemm.py --threads $t --repeat 5 > $D/gemm_native_t${t}_$run.txt
  done
done
