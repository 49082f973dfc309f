"""kernels/csrc/anda_cuda.cu compiles with nvcc without torch (-DANDA_STANDALONE)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CU = Path(__file__).resolve().parents[1] / "kernels" / "csrc" / "anda_cuda.cu"
NVCC = shutil.which("nvcc")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
def test_nvcc_compiles_standalone(tmp_path):
    out = tmp_path / "anda_cuda.o"
    proc = subprocess.run([NVCC, "-c", "-DANDA_STANDALONE", "-O3", "-std=c++17", "-x", "cu", str(CU), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.stat().st_size > 1000
    syms = subprocess.run(["nm", "-C", str(out)], capture_output=True, text=True).stdout if shutil.which("nm") else ""
    if syms:
        for name in ("launch_pack", "launch_unpack", "launch_gemm"):
            assert f"anda_cuda::{name}" in syms
