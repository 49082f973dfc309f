"""A one-time, single-threaded first call of every MKL VML function torch's CPU unary ops use.

torch (built with oneMKL 2024.2, as the 2.13 CPU wheel is) computes contiguous float32/float64
``cos``, ``sin``, ``exp``, ``sqrt``, ... by calling MKL's VML from each intra-op thread on its
chunk, and oneMKL resolves each VML function's kernel on that function's first call. When the
first call runs on two threads at once, one of them can run a low-accuracy kernel for its whole
chunk of that one call (pytorch/pytorch#188792). Seen here: the rotary embedding's first
``cos`` (1 × 512 × 64, two threads) came out up to 1.5e-4 off for the second thread's half in
about half of the runs of ``andactl quantize smollm2-135m``, so GPTQ — which amplifies any
difference — wrote a different artifact from run to run. Calling every such function once on a
few elements (below torch's parallel grain, so in the calling thread alone) resolves the dispatch
before any concurrent call.
"""
from __future__ import annotations

import functools

import torch

# The functions aten/src/ATen/cpu/vml.h routes to MKL (IMPLEMENT_VML_MKL), by torch's name.
VML_FUNCTIONS = ("acos", "asin", "atan", "cos", "erf", "erfc", "erfinv", "exp", "log", "log10", "log2", "sin",
                 "sqrt", "tan", "tanh", "trunc")


@functools.cache
def warm_vector_math() -> None:
    """Calls each of VML_FUNCTIONS once in float32 and float64 on 8 elements (in this thread only);
    idempotent, and a no-op after the first call in a process. Call it before the first
    multi-threaded torch op of a run (model loading does)."""
    for dtype in (torch.float32, torch.float64):
        x = torch.full((8,), 0.5, dtype=dtype)
        for name in VML_FUNCTIONS:
            getattr(torch, name)(x)
