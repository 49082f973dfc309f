"""Decode-step attention (``andactl::decode_attention``) vs torch's ``F.scaled_dot_product_attention``
(grouped heads, ``enable_gqa``) side by side in one run, on SmolLM2-135M's shape (9 query heads, 3 KV
heads, head size 64) with the cache as a view into a larger buffer, as the reserved KV cache keeps
it. Two regimes: "hot" (one layer's cache, called again and again: caches warm) and "streamed"
(30 layers' caches in turn, as a decode step reads them: from memory).

    .venv/bin/python benchmarks/bench_attention.py [--threads 2] [--batch 1,8] [--seq 576,2048] [--dtype bf16]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import setup  # noqa: E402

from andactl.kernels import attention, build  # noqa: E402

HEADS, KV_HEADS, HEAD_DIM, LAYERS = 9, 3, 64, 30


def _per_call_us(fn, caches, rounds: int) -> float:
    for _ in range(2):
        for k, v in caches:
            fn(k, v)
    t0 = time.perf_counter()
    for _ in range(rounds):
        for k, v in caches:
            fn(k, v)
    return (time.perf_counter() - t0) / (rounds * len(caches)) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--seq", default="576,2048")
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    args = ap.parse_args()
    setup(args.threads)
    dt = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)
    scale = HEAD_DIM ** -0.5
    print(f"# {build.cpu_isa_info()}, {args.threads} threads, torch {torch.__version__}; {HEADS} heads over "
          f"{KV_HEADS} KV heads, head size {HEAD_DIM}, {args.dtype}, one query token per sequence")
    print("| batch | cached tokens | regime | decode_attention us | SDPA us | x SDPA | max abs diff vs float32 |")
    print("|---|---|---|---|---|---|---|")
    for b in (int(v) for v in args.batch.split(",")):
        for s in (int(v) for v in args.seq.split(",")):
            q = torch.randn(b, HEADS, 1, HEAD_DIM, generator=gen).to(dt)
            cap = s + s // 2  # the reserved cache's spare room
            caches = [(torch.randn(b, KV_HEADS, cap, HEAD_DIM, generator=gen).to(dt)[:, :, :s],
                       torch.randn(b, KV_HEADS, cap, HEAD_DIM, generator=gen).to(dt)[:, :, :s]) for _ in range(LAYERS)]
            k, v = caches[0]
            ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=scale, enable_gqa=True)
            diff = float((attention.decode_attention(q, k, v, scale).float() - ref).abs().max())
            ours = lambda k, v: attention.decode_attention(q, k, v, scale)  # noqa: E731
            sdpa = lambda k, v: F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=True)  # noqa: E731
            for regime, cs, rounds in (("hot", caches[:1], 300), ("streamed", caches, 10)):
                a, t = _per_call_us(ours, cs, rounds), _per_call_us(sdpa, cs, rounds)
                print(f"| {b} | {s} | {regime} | {a:.1f} | {t:.1f} | {t / a:.2f} | {diff:.2g} |")


if __name__ == "__main__":
    main()
