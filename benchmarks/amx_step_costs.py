"""Cost of one step of the AMX packed GEMM, piece by piece, on this CPU (needs AMX-INT8).

    .venv/bin/python benchmarks/amx_step_costs.py

Compiles benchmarks/amx_step_costs.cpp with g++ (AMX/AVX-512 flags for this benchmark only; the
extension itself selects its paths at run time) into a temporary folder and runs it on one thread:
ns per 16x16x64 step of the tile operations alone, the vector epilogue alone and both in the
kernel's order, and ns per TDPBSSD / TILESTORED / TILELOADD. If tile operations and epilogue ran
side by side, "both" would be near the larger of the two; a sum means they do not overlap. torch's
AMX-BF16 GEMM needs ~21-23 ns for the same multiply-adds (bench_gemm.py, one thread), so a step
must take <= ~15 ns for the packed GEMM to be 1.5x faster.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ("-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mamx-tile", "-mamx-int8")


def main() -> None:
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    if "amx_int8" not in flags:
        sys.exit("this CPU has no AMX-INT8: nothing to measure")
    if not shutil.which("g++"):
        sys.exit("g++ not found")
    src = Path(__file__).with_suffix(".cpp")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "amx_step_costs"
        subprocess.run(["g++", *FLAGS, "-o", str(exe), str(src)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    res = json.loads(out)
    print(json.dumps(res))
    print(f"tile ops {res['tile_ops_ns']:.1f} + epilogue {res['epilogue_ns']:.1f} "
          f"(sum {res['tile_ops_ns'] + res['epilogue_ns']:.1f}) vs both {res['both_ns']:.1f} ns per step",
          file=sys.stderr)


if __name__ == "__main__":
    main()
