"""The quantized LM head (``andactl::table_linear``) vs torch's bf16 ``F.linear`` on the same
shape, side by side in one run: SmolLM2-135M's head (49152 x 576), INT8, groups of 64 (the
``quantize`` defaults), bf16 activations of T tokens (1 = batch-1 decode, 8 = batch-8 decode,
32+ = prompts, perplexity windows, SliceGPT's throughput measure).

    .venv/bin/python benchmarks/bench_head.py [--threads 2] [--tokens 1,8,16,32,128,1024] [--group 64]
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench, setup  # noqa: E402

from andactl.formats import table_quant as tq  # noqa: E402
from andactl.kernels import build, tables  # noqa: E402  (build: the ISA line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", default="1,8,16,32,128,1024")
    ap.add_argument("--group", type=int, default=tq.DEFAULT_TABLE_GROUP)
    ap.add_argument("--bits", type=int, choices=(8, 4), default=8)
    args = ap.parse_args()
    setup(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows, k = 49152, 576
    w = torch.randn(rows, k, generator=gen) * 0.05
    packed, scale = tq.quantize(w, args.bits, args.group)
    wb = tq.dequantize(packed, scale, args.bits, k, args.group).bfloat16()
    print(f"# {build.cpu_isa_info()}, {args.threads} threads, torch {torch.__version__}; "
          f"head {rows}x{k} INT{args.bits} group {args.group}, bf16 x")
    print("| tokens | table_linear ms | bf16 F.linear ms | x bf16 |")
    print("|---|---|---|---|")
    for t in (int(v) for v in args.tokens.split(",")):
        x = torch.randn(t, k, generator=gen).bfloat16()
        ours = bench(lambda: tables.table_linear(x, packed, scale, args.bits, args.group, None), 5)
        dense = bench(lambda: F.linear(x, wb), 5)
        print(f"| {t} | {ours:.2f} | {dense:.2f} | {dense / ours:.2f} |")


if __name__ == "__main__":
    main()
