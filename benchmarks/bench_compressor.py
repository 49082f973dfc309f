"""anda_pack (the Anda compressor) throughput in GB/s of FP16 input: C++ kernel (its best SIMD
path and the portable scalar path, chosen with ANDA_CPU_ISA) vs the pure-torch reference.

    .venv/bin/python benchmarks/bench_compressor.py [--format json] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import setup  # noqa: E402

from andactl.kernels import build, ops  # noqa: E402


def bench(fn, min_time: float = 0.3) -> float:
    """Median seconds per call after 2 warmups, at least 3 calls and ~min_time in total."""
    fn(); fn()
    t = time.perf_counter(); fn(); one = time.perf_counter() - t
    times = []
    for _ in range(max(3, int(min_time / max(one, 1e-6)))):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", choices=("table", "json"), default="table")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    setup(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for shape in ((2048, 576), (16, 4096), (2048, 1536)):
        x = torch.randn(shape, generator=gen).half()
        gb = x.numel() * 2 / 1e9
        for m in (4, 8, 16):
            t_cpp = bench(lambda: torch.ops.andactl.anda_pack(x, m))
            prev = os.environ.get("ANDA_CPU_ISA")
            os.environ["ANDA_CPU_ISA"] = "scalar"  # read per call by the extension
            try:
                t_scalar = bench(lambda: torch.ops.andactl.anda_pack(x, m), 0.1)
            finally:
                os.environ.pop("ANDA_CPU_ISA")
                if prev is not None:
                    os.environ["ANDA_CPU_ISA"] = prev
            t_ref = bench(lambda: ops._pack_ref(x, m), 0.1)
            rows.append(dict(shape="x".join(map(str, shape)), M=m, cpp_ms=t_cpp * 1e3, ref_ms=t_ref * 1e3,
                             cpp_gbps=gb / t_cpp, scalar_gbps=gb / t_scalar, ref_gbps=gb / t_ref,
                             speedup=t_ref / t_cpp))
    info = dict(isa=build.cpu_isa_info(), threads=args.threads,
                loadavg=" ".join(f"{v:.2f}" for v in os.getloadavg()))
    if args.format == "json":
        print(json.dumps(dict(info=info, rows=rows), indent=1))
        return
    print(f"# {info}")
    print("| shape (fp16) | M | C++ ms | C++ GB/s | C++ scalar GB/s | reference ms | reference GB/s | speedup |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['M']} | {r['cpp_ms']:.3f} | {r['cpp_gbps']:.2f} | {r['scalar_gbps']:.2f} | "
              f"{r['ref_ms']:.2f} | {r['ref_gbps']:.3f} | {r['speedup']:.1f}x |")


if __name__ == "__main__":
    main()
