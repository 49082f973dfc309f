"""The op ``andactl::decode_attention``: attention of a few query tokens against a whole KV cache
(a decode step), grouped-query heads read straight from the cache.

    decode_attention(q [B, H, T, D], k [B, KVH, S, D], v [B, KVH, S, D], scale) -> [B, H, T, D]

every query of head h attends to all S keys of KV head h // (H // KVH), with no mask: exactly the
attention of a decode step whose cache holds only this sequence's past (no padding). q, k and v
share a dtype (float32, bfloat16 or float16); k / v may be views into a larger buffer (any
strides, last dimension contiguous). Invariant: equals
``F.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=scale, enable_gqa=True)``
rounded to q's dtype, up to float32 summation order and exp (~1e-6 relative). The C++ kernel
reads each K / V row once for every query head of its group and keeps scores and sums in
float32; on a 2-core Xeon (AVX-512) it replaces torch's flash-attention CPU kernel, whose per
(batch, head) setup dominates one-token queries.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from andactl.kernels import build, ops

SCHEMA = "decode_attention(Tensor q, Tensor k, Tensor v, float scale) -> Tensor"


def _decode_attention_ref(q, k, v, scale):
    return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=scale, enable_gqa=True).to(q.dtype)


def _decode_attention_fake(q, k, v, scale):
    return q.new_empty(q.shape)


_LIB = ops.define_ops("FRAGMENT", {"decode_attention": SCHEMA},
                      {"decode_attention": (_decode_attention_ref, _decode_attention_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def has_cpu_kernel() -> bool:
    """True when the C++ extension registered a CPU kernel for ``andactl::decode_attention``."""
    return ops.has_cpu_kernel("decode_attention")


def vectorized(head_dim: int) -> bool:
    """True when the loaded C++ kernel has a SIMD path for this head size at the selected ISA
    (AVX-512 with head_dim a multiple of 16, or AVX2 with a multiple of 8; ANDA_CPU_ISA caps it);
    False without the extension. Where it is False the kernel runs a scalar loop, slower than
    torch's own attention."""
    if not has_cpu_kernel():
        return False
    return bool(torch.ops.andactl_cpp.decode_attention_vectorized(int(head_dim)))


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """The op on q's device: on CPU the C++ kernel (the extension is built / loaded on first use; if
    it cannot be, the reference), elsewhere the reference."""
    if q.device.type == "cpu" and not has_cpu_kernel():
        build.load()  # never raises; one warning if the extension cannot be built
    return torch.ops.andactl.decode_attention(q, k, v, float(scale))


__all__ = ["SCHEMA", "decode_attention", "has_cpu_kernel", "vectorized"]
