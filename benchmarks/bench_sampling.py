"""Sampling text from SmolLM2-135M (``andactl.data.model_text.sample_from_model``, float32, KV cache,
the lean decode step) with each draw method and batch size, side by side in one run: torch's
``multinomial`` (before stop 53) against ``draw_tokens`` (inverse CDF), at 16 rows (the calibration
default) and at the rows ``sampling_rows`` gives recover's self text. Prints tokens/s and ms per
decode step; also the draw alone on [rows, 49152] probabilities.

    .venv/bin/python benchmarks/bench_sampling.py [--threads 2] [--rows 16,64] [--seqlen 256]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench, setup  # noqa: E402

import andactl.data.model_text as mt  # noqa: E402
from andactl.kernels import build  # noqa: E402  (build: the ISA line)
from andactl.models.loading import load_model  # noqa: E402


def multinomial(probs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.multinomial(probs, 1, generator=gen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", default="16,64")
    ap.add_argument("--seqlen", type=int, default=256)
    args = ap.parse_args()
    setup(args.threads)
    lm = load_model("smollm2-135m", "float32", "cpu")
    vocab = mt.model_vocab(lm.model, lm.tokenizer)
    auto = mt.model_sampling_rows(lm.model, args.seqlen, 10**6)
    print(f"# {build.cpu_isa_info()}, {args.threads} threads, torch {torch.__version__}; SmolLM2-135M float32, "
          f"{args.seqlen} tokens per sequence; recover's self text samples {auto} rows at a time")
    gen = torch.Generator().manual_seed(0)
    print("| rows | draw alone: multinomial ms | draw_tokens ms |")
    print("|---|---|---|")
    for rows in (int(v) for v in args.rows.split(",")):
        probs = torch.softmax(torch.randn(rows, vocab, generator=gen) * 3, -1)
        print(f"| {rows} | {bench(lambda: multinomial(probs, gen), 5):.2f} | "
              f"{bench(lambda: mt.draw_tokens(probs, gen), 5):.2f} |")
    print("\n| rows | draw | tokens/s | ms per decode step |")
    print("|---|---|---|---|")
    real = mt.draw_tokens
    try:
        for rows in (int(v) for v in args.rows.split(",")):
            for name, draw in (("multinomial", multinomial), ("draw_tokens", real)):
                mt.draw_tokens = draw
                t0 = time.perf_counter()
                mt.sample_from_model(lm.model, vocab, rows, args.seqlen, 0, batch_size=rows)
                dt = time.perf_counter() - t0
                print(f"| {rows} | {name} | {rows * args.seqlen / dt:.1f} | {dt / (args.seqlen - 1) * 1e3:.1f} |",
                      flush=True)
    finally:
        mt.draw_tokens = real


if __name__ == "__main__":
    main()
