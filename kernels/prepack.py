"""Prepacked INT4 weights: the ``andactl::int4_prepack`` and ``andactl::anda_gemm_prepacked`` ops.

A weight is prepacked once (AndaLinear caches it, not as state) into the layout the CPU GEMM
micro-kernels stream, so no per-call repack is needed. Layout (uint8 [NB, Gw64, 16, 32] with
NB = ceil(N / 16) blocks of 16 output rows and Gw64 = Kw / 64 column groups of 64):

    byte [b, g, kq, 4*r + e]  (kq < 16, r < 8, e < 4)
      low nibble  = code q of row 16*b + r      at column 64*g + kk
      high nibble = code q of row 16*b + 8 + r  at column 64*g + kk
    where p = 4*kq + e and kk = 2*p for p < 32, kk = 2*(p - 32) + 1 for p >= 32
    (the even columns of the group, then the odd ones); rows >= N hold code 0.

It holds exactly the codes of ``w_packed`` (``int4_unprepack`` inverts it); scales and zero points
stay in their canonical tensors. Schemas are defined here once, with pure-torch references for
``CompositeExplicitAutograd`` (any device) and fake kernels; the C++ extension adds CPU kernels.
"""
from __future__ import annotations

import torch

from andactl.errors import ConfigError
from andactl.kernels import ops  # the andactl namespace and anda_gemm schemas first; define_ops
from andactl.formats.int4_layout import check_int4, pack_int4, padded_k, unpack_int4
from andactl.kernels.reference import anda_gemm_reference

NAMESPACE = "andactl"
BLOCK_ROWS = 16
SCHEMAS = {
    "int4_prepack": "int4_prepack(Tensor w_packed, Tensor w_scales, Tensor? w_zeros, int group_size, int k) -> Tensor",
    "anda_gemm_prepacked": ("anda_gemm_prepacked(Tensor words, Tensor exponents, int mantissa_bits, int k, "
                            "Tensor w_prepacked, Tensor w_scales, Tensor? w_zeros, int group_size, int n) -> Tensor"),
}


def _positions(device: torch.device) -> torch.Tensor:
    """Column (within a 64-group) of each position p: even columns then odd columns."""
    return torch.cat([torch.arange(0, 64, 2, device=device), torch.arange(1, 64, 2, device=device)])


def prepack_reference(w_packed: torch.Tensor) -> torch.Tensor:
    """uint8 [ceil(N/16), Kw/64, 16, 32] in the layout of the module docstring (pure torch)."""
    n, kw = w_packed.shape[0], w_packed.shape[1] * 2
    nb, g = -(-n // BLOCK_ROWS), kw // 64
    codes = torch.zeros(nb * BLOCK_ROWS, kw, dtype=torch.uint8, device=w_packed.device)
    codes[:n] = unpack_int4(w_packed)
    codes = codes.reshape(nb, 2, 8, g, 64)[..., _positions(w_packed.device)]  # [b, half, r, g, p]
    codes = codes.reshape(nb, 2, 8, g, 16, 4).permute(0, 3, 4, 1, 2, 5)  # [b, g, kq, half, r, e]
    return (codes[:, :, :, 0] | (codes[:, :, :, 1] << 4)).reshape(nb, g, 16, 32).contiguous()


def unprepack_reference(w_prepacked: torch.Tensor, n: int) -> torch.Tensor:
    """Canonical w_packed uint8 [n, Kw/2] from a prepacked weight (inverse of prepack_reference)."""
    nb, g = w_prepacked.shape[0], w_prepacked.shape[1]
    v = w_prepacked.reshape(nb, g, 16, 8, 4)
    codes = torch.stack([v & 15, v >> 4], dim=3)  # [b, g, kq, half, r, e]
    codes = codes.permute(0, 3, 4, 1, 2, 5).reshape(nb * BLOCK_ROWS, g, 64)  # [row, g, p]
    out = torch.empty_like(codes)
    out[..., _positions(w_prepacked.device)] = codes
    return pack_int4(out.reshape(nb * BLOCK_ROWS, g * 64)[:n])


def _prepack_ref(w_packed, w_scales, w_zeros, group_size, k):
    return prepack_reference(w_packed)


def _prepack_fake(w_packed, w_scales, w_zeros, group_size, k):
    n, kw = w_packed.shape[0], w_packed.shape[1] * 2
    return w_packed.new_empty(((n + BLOCK_ROWS - 1) // BLOCK_ROWS, kw // 64, 16, 32), dtype=torch.uint8)


def _gemm_prepacked_ref(words, exponents, mantissa_bits, k, w_prepacked, w_scales, w_zeros, group_size, n):
    w_packed = unprepack_reference(w_prepacked, n)
    return anda_gemm_reference(words, exponents, mantissa_bits, k, w_packed, w_scales, w_zeros, group_size)


def _gemm_prepacked_fake(words, exponents, mantissa_bits, k, w_prepacked, w_scales, w_zeros, group_size, n):
    return words.new_empty((*exponents.shape[:-1], n), dtype=torch.float32)


_LIB = ops.define_ops("FRAGMENT", SCHEMAS, {"int4_prepack": (_prepack_ref, _prepack_fake),
                                          "anda_gemm_prepacked": (_gemm_prepacked_ref, _gemm_prepacked_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def int4_prepack(w_packed: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
                 group_size: int, k: int) -> torch.Tensor:
    """Prepacked copy (layout above) of a validated INT4 weight; ConfigError names a bad tensor.
    Invariant: ``unprepack_reference(int4_prepack(w, ...), N)`` equals ``w``."""
    check_int4(w_packed, w_scales, w_zeros, group_size, k)
    return torch.ops.andactl.int4_prepack(w_packed, w_scales, w_zeros, group_size, k)


def anda_gemm_prepacked(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int,
                        w_prepacked: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
                        group_size: int, n: int) -> torch.Tensor:
    """float32 [..., n]: same result as ``ops.anda_gemm`` on the canonical weight that was prepacked
    (up to float32 accumulation order). Arguments are validated with one-line ConfigErrors."""
    ops._check_words(words, exponents, mantissa_bits, k)
    kw = padded_k(k, group_size)  # ConfigError for a bad group size
    want = (-(-int(n) // BLOCK_ROWS), kw // 64, 16, 32)
    if w_prepacked.dtype != torch.uint8 or tuple(w_prepacked.shape) != want:
        raise ConfigError(f"w_prepacked must be uint8 {list(want)} for n={n}, k={k}, group {group_size}; got "
                          f"{w_prepacked.dtype} {tuple(w_prepacked.shape)}")
    fake_packed = torch.empty(int(n), kw // 2, dtype=torch.uint8, device="meta")
    check_int4(fake_packed, w_scales.to("meta"), None if w_zeros is None else w_zeros.to("meta"), group_size, k)
    return torch.ops.andactl.anda_gemm_prepacked(words, exponents, mantissa_bits, k, w_prepacked, w_scales,
                                                 w_zeros, group_size, n)


__all__ = ["BLOCK_ROWS", "SCHEMAS", "int4_prepack", "anda_gemm_prepacked", "prepack_reference",
           "unprepack_reference"]
