"""Two row-wise ops of a decode step, each one dispatch instead of five to eight small torch ops:

    rms_norm(x [..., n], weight? [n], eps, divisor) -> (h * rsqrt(sum(h**2, -1) / divisor + eps)).to(x.dtype)
             with h = x in float32 (float64 for float64 x), then weight * that (torch's type
             promotion) when a weight is given
    rotary(x [B, H, T, D], cos [B or 1, 1, T, D], sin) -> x * cos + rotate_half(x) * sin

``rms_norm`` is transformers' Llama-family RMSNorm (divisor = n: its ``mean``) and andactl's
weightless RMSN (divisor = the model's original width); ``rotary`` is transformers'
``apply_rotary_pos_emb`` for one tensor (rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])).
Invariants: ``rotary`` equals the torch expression bit for bit in every dtype (each product and
the sum rounded to x's dtype as torch rounds them); ``rms_norm`` equals it up to the float32
summation order of the sum of squares (the C++ kernel keeps 16 float32 partial sums). The
C++ extension registers the CPU kernels (float32, bfloat16, float16); other dtypes and devices run
the torch expressions (the references).
"""
from __future__ import annotations

import torch

from andactl.kernels import ops

SCHEMAS = {
    "rms_norm": "rms_norm(Tensor x, Tensor? weight, float eps, float divisor) -> Tensor",
    "rotary": "rotary(Tensor x, Tensor cos, Tensor sin) -> Tensor",
}
DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # the C++ kernels' dtypes


def rms_norm_reference(x, weight, eps, divisor):
    dt = x.dtype
    h = x if dt == torch.float64 else x.to(torch.float32)
    h = (h * torch.rsqrt(h.pow(2).sum(-1, keepdim=True) / divisor + eps)).to(dt)
    return h if weight is None else weight * h


def _rms_norm_fake(x, weight, eps, divisor):
    dt = x.dtype if weight is None else torch.promote_types(weight.dtype, x.dtype)
    return x.new_empty(x.shape, dtype=dt)


def rotary_reference(x, cos, sin):
    d = x.shape[-1] // 2
    return (x * cos) + (torch.cat((-x[..., d:], x[..., :d]), dim=-1) * sin)


def _rotary_fake(x, cos, sin):
    return x.new_empty(x.shape)


_LIB = ops.define_ops("FRAGMENT", SCHEMAS, {"rms_norm": (rms_norm_reference, _rms_norm_fake),
                                           "rotary": (rotary_reference, _rotary_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def has_cpu_kernels() -> bool:
    """True when the C++ extension registered the CPU kernels of both ops."""
    return ops.has_cpu_kernel("rms_norm") and ops.has_cpu_kernel("rotary")


__all__ = ["DTYPES", "SCHEMAS", "has_cpu_kernels", "rms_norm_reference", "rotary_reference"]
