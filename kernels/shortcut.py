"""The op ``andactl::shortcut_add``: a SliceGPT residual shortcut of a decode step.

    shortcut_add(r [..., din], S [din, dout], u [..., dout]) -> r @ S + u

r, S and u share a dtype (float32, bfloat16 or float16). Invariant: equals ``torch.matmul(r, S) +
u`` (the product rounded to the dtype, then the sum rounded), up to the float32 summation order of
the product (one float32 sum per output in order of ``i``, fused multiply-adds on the SIMD levels).
Why: torch's bfloat16 ``matmul`` of one row by a 432 x 432 matrix takes ~75 us on a 2-core Xeon
(the two shortcuts of each of SmolLM2's 30 layers were a quarter of a sliced, packed model's decode
step); the C++ kernel streams S once per row at the cache's read rate. Other dtypes and devices,
and the reference, run the torch expression.
"""
from __future__ import annotations

import torch

from andactl.kernels import build, ops

SCHEMA = "shortcut_add(Tensor r, Tensor S, Tensor u) -> Tensor"


def shortcut_add_reference(r, S, u):
    return torch.matmul(r, S) + u


def _shortcut_add_fake(r, S, u):
    return u.new_empty(u.shape)


_LIB = ops.define_ops("FRAGMENT", {"shortcut_add": SCHEMA},
                      {"shortcut_add": (shortcut_add_reference, _shortcut_add_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def has_cpu_kernel() -> bool:
    """True when the C++ extension registered a CPU kernel for ``andactl::shortcut_add``."""
    return ops.has_cpu_kernel("shortcut_add")


# Residual rows up to which a bfloat16 / float16 shortcut runs andactl::shortcut_add (more, or
# float32, where MKL's GEMV is as fast: torch). A 432 x 432 bfloat16 shortcut, 1 thread of a 2-core
# Xeon, S in L2: 21 / 25 / 47 us at 1 / 4 / 8 rows against torch's 39 / 31 / 34; from L3 / DRAM
# at 1 row 30 / 44 against 45 / 70; inside a sliced SmolLM2's decode step at 8 rows 83-90 against
# 94-96 us (batch 8: 262-276 against 241-242 tok/s; docs/BENCH.md, tenth round).
SHORTCUT_ROWS = 8
HALF_DTYPES = (torch.bfloat16, torch.float16)


def residual_add(r: torch.Tensor, S: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``torch.matmul(r, S.to(r.dtype)) + u``, the residual after a SliceGPT shortcut plus a block's
    update: the C++ op for the few 16-bit CPU rows of a decode step (equal up to float32 summation
    order), torch for everything else, and always torch where autograd records (training, recovery:
    the op has no backward)."""
    S = S.to(r.dtype)
    if (r.device.type == "cpu" and r.dtype in HALF_DTYPES and r.numel() <= SHORTCUT_ROWS * r.shape[-1]
            and not (torch.is_grad_enabled() and (r.requires_grad or S.requires_grad or u.requires_grad))
            and u.dtype == r.dtype and u.shape == (*r.shape[:-1], S.shape[-1])):
        if not has_cpu_kernel():
            build.load()  # a sliced model without packed linears: built / loaded on first use, once
        if has_cpu_kernel():
            return torch.ops.andactl.shortcut_add(r, S, u)
    return torch.matmul(r, S) + u


def shortcut_add(r: torch.Tensor, S: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The op on r's device: on CPU the C++ kernel (the extension is built / loaded on first use; if
    it cannot be, the reference), elsewhere the reference."""
    if r.device.type == "cpu" and not has_cpu_kernel():
        build.load()  # never raises; one warning if the extension cannot be built
    return torch.ops.andactl.shortcut_add(r, S, u)


__all__ = ["HALF_DTYPES", "SCHEMA", "SHORTCUT_ROWS", "has_cpu_kernel", "residual_add", "shortcut_add",
           "shortcut_add_reference"]
