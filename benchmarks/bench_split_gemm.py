"""The recovery loss's head products on AMX-BF16 tiles (``andactl::split_mm``, split bfloat16,
float32-grade) vs torch's float32 ``mm`` on the same operands, side by side in one run: per chunk
of 256 tokens, the student's logits (h @ W.t()), the teacher's, and the gradient back to the hidden
states (g @ W), with the largest error against float64 relative to |x| @ |W|.

    .venv/bin/python benchmarks/bench_split_gemm.py [--threads 2] [--shapes 49152x432,49152x576,151936x768]

Shapes are heads [vocab x width]: SmolLM2-135M sliced 25% (432) and dense (576), a Qwen3-0.6B-shaped
slice (151936 x 768). On CPUs without AMX-BF16 the kernel runs software tiles (a layout check, not a
speed path): the benchmark says so and stops.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import bench, setup  # noqa: E402

from andactl.evaluation.throughput import cpu_name  # noqa: E402
from andactl.kernels import build, split_gemm  # noqa: E402

TOKENS = 256  # recover_loss.DEFAULT_CHUNK


def _error(got: torch.Tensor, x: torch.Tensor, b: torch.Tensor) -> float:
    exact = x.double() @ b.double()
    return float(((got.double() - exact).abs() / (x.double().abs() @ b.double().abs())).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="49152x432,49152x576,151936x768")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    setup(args.threads)
    if not split_gemm.hardware():
        raise SystemExit(f"no AMX-BF16 tiles here ({build.cpu_isa_info()}): split_mm would run software tiles")
    print(f"# {cpu_name()}; {build.cpu_isa_info()}, {args.threads} threads, torch {torch.__version__}; "
          f"{TOKENS} tokens per call; error = max |y - exact| / (|x| @ |W|)")
    print("| head | product | split_mm ms | torch float32 mm ms | speed-up | split_mm error | float32 error |")
    print("|---|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for spec in args.shapes.split(","):
        vocab, width = (int(v) for v in spec.split("x"))
        w = torch.randn(vocab, width, generator=gen) * 0.05
        h = torch.randn(TOKENS, width, generator=gen)
        g = torch.randn(TOKENS, vocab, generator=gen) * 1e-4
        packed = split_gemm.SplitMatrix(w)
        logits, grad = torch.empty(TOKENS, vocab), torch.empty(TOKENS, width)
        work = torch.empty(split_gemm.work_size(TOKENS, vocab), dtype=torch.bfloat16)
        cases = [("logits h @ W.t()", lambda: packed.rows_times(h, logits, work), lambda: torch.mm(h, w.t(), out=logits),
                  h, w.t(), logits),
                 ("gradient g @ W", lambda: packed.times(g, grad, work), lambda: torch.mm(g, w, out=grad), g, w, grad)]
        for name, split_fn, torch_fn, x, b, out in cases:
            ms_split = bench(split_fn, args.repeat)
            err_split = _error(out, x, b)
            ms_torch = bench(torch_fn, args.repeat)
            err_torch = _error(out, x, b)
            print(f"| {vocab} x {width} | {name} | {ms_split:.1f} | {ms_torch:.1f} | {ms_torch / ms_split:.2f}x | "
                  f"{err_split:.1e} | {err_torch:.1e} |", flush=True)


if __name__ == "__main__":
    main()
