"""Throughput of the Anda fake-quant (andactl.formats.anda.quantize) on activation-sized tensors.

Prints elements/s for float32 and bfloat16 inputs of shape [2048, 576] and [2048, 1536] at
M = 4 and 8 (truncate and nearest), beside the cost of a bare float16 round trip
(x.to(float16).to(x.dtype)) measured in the same run, plus the reference bit-plane pack.

    .venv/bin/python benchmarks/bench_fakequant.py [--repeat 10] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from andactl.formats import anda


def timings(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(min, median) wall time of fn over `repeat` runs after two warm-up calls. The minimum is
    the number to quote on a shared machine (other load only ever adds time)."""
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average {load:.1f}, repeat {args.repeat}; Melem/s and ratio from the min time")
    header = (f"{'dtype':9} {'shape':12} {'M':>2} {'rounding':8} {'min ms':>8} {'med ms':>8} {'Melem/s':>9} "
              f"{'vs fp16 cast':>12}")
    print(header)
    print("-" * len(header))
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for shape in ((2048, 576), (2048, 1536)):
            x = (torch.randn(shape, generator=g) * 3).to(dtype)
            n = x.numel()
            base, _ = timings(lambda: x.to(torch.float16).to(dtype), args.repeat)
            for m in (4, 8):
                for rounding in ("truncate", "nearest"):
                    t, med = timings(lambda: anda.quantize(x, m, rounding=rounding), args.repeat)
                    print(f"{str(dtype)[6:]:9} {str(list(shape)):12} {m:>2} {rounding:8} {t * 1e3:8.2f} "
                          f"{med * 1e3:8.2f} {n / t / 1e6:9.1f} {t / base:11.1f}x")
    x = torch.randn(2048, 1536, generator=g)
    for m in (4, 8):
        t, _ = timings(lambda: anda.pack_planes(x, m), max(3, args.repeat // 4))
        print(f"reference pack_planes float32 [2048, 1536] M={m}: {t * 1e3:.1f} ms, {x.numel() / t / 1e6:.1f} Melem/s")


if __name__ == "__main__":
    main()
