"""INT4 weight layout of ops_spec.md: nibble packing and exact dequantization.

W [N, K] (out_features, in_features), groups of ``group_size`` (a positive multiple of 64) along
K, Kw = ceil(K / group_size) * group_size. ``w_packed`` uint8 [N, Kw/2]: byte b of a row holds
column 2b in its LOW nibble and column 2b+1 in its HIGH nibble. ``w_scales`` float32
[N, Kw/group_size]; ``w_zeros`` None (symmetric, zero point 8) or uint8 [N, Kw/group_size] in 0..15.
Dequantized W[n, k] = (q[n, k] - z[n, k // group_size]) * w_scales[n, k // group_size].
"""
from __future__ import annotations

import torch

from andactl.errors import ConfigError

SYMMETRIC_ZERO = 8


def padded_k(k: int, group_size: int) -> int:
    """Kw = ceil(k / group_size) * group_size (ConfigError unless group_size is a multiple of 64)."""
    check_weight_group_size(group_size)
    return -(-int(k) // group_size) * group_size


def check_weight_group_size(group_size: int) -> int:
    """Return group_size; ConfigError unless it is a positive multiple of 64."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 64 or group_size % 64:
        raise ConfigError(f"INT4 weight group size must be a positive multiple of 64, got {group_size!r}")
    return group_size


def unpack_int4(w_packed: torch.Tensor) -> torch.Tensor:
    """uint8 codes [N, 2*B] from packed bytes [N, B]: column 2b = low nibble, 2b+1 = high nibble."""
    if w_packed.dtype != torch.uint8 or w_packed.dim() != 2:
        raise ConfigError(f"w_packed must be a 2-D uint8 tensor, got {w_packed.dtype} {tuple(w_packed.shape)}")
    low = w_packed & 0x0F
    high = w_packed >> 4
    return torch.stack([low, high], dim=-1).reshape(w_packed.shape[0], -1)


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Packed bytes uint8 [N, Kw/2] from codes uint8 [N, Kw] in 0..15 (inverse of unpack_int4)."""
    if codes.dtype != torch.uint8 or codes.dim() != 2 or codes.shape[1] % 2:
        raise ConfigError(f"INT4 codes must be a 2-D uint8 tensor with an even column count, got "
                          f"{codes.dtype} {tuple(codes.shape)}")
    if codes.numel() and int(codes.max()) > 15:
        raise ConfigError("INT4 codes must be in 0..15")
    return (codes[:, 0::2] | (codes[:, 1::2] << 4)).contiguous()


def check_int4(w_packed: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
               group_size: int, k: int) -> int:
    """Validate the INT4 tensors for a K = k weight; return N. ConfigError names the bad tensor."""
    kw = padded_k(k, group_size)
    if w_packed.dtype != torch.uint8 or w_packed.dim() != 2 or w_packed.shape[1] != kw // 2:
        raise ConfigError(f"w_packed must be uint8 [N, {kw // 2}] for K={k}, group {group_size}; got "
                          f"{w_packed.dtype} {tuple(w_packed.shape)}")
    n = w_packed.shape[0]
    want = (n, kw // group_size)
    if w_scales.dtype != torch.float32 or tuple(w_scales.shape) != want:
        raise ConfigError(f"w_scales must be float32 {list(want)}; got {w_scales.dtype} {tuple(w_scales.shape)}")
    if w_zeros is not None and (w_zeros.dtype != torch.uint8 or tuple(w_zeros.shape) != want):
        raise ConfigError(f"w_zeros must be None or uint8 {list(want)}; got {w_zeros.dtype} {tuple(w_zeros.shape)}")
    return n


def centered_codes(w_packed: torch.Tensor, w_zeros: torch.Tensor | None, group_size: int) -> torch.Tensor:
    """int32 [N, Kw]: q - z per column (z = 8 when w_zeros is None). Exact small integers."""
    q = unpack_int4(w_packed).to(torch.int32)
    if w_zeros is None:
        return q - SYMMETRIC_ZERO
    return q - w_zeros.to(torch.int32).repeat_interleave(group_size, dim=1)


def dequantize_int4(w_packed: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
                    group_size: int, k: int) -> torch.Tensor:
    """float32 [N, k]: (q - z) * scale of the column's group (one float32 rounding per element)."""
    check_int4(w_packed, w_scales, w_zeros, group_size, k)
    qz = centered_codes(w_packed, w_zeros, group_size).to(torch.float32)
    w = qz * w_scales.repeat_interleave(group_size, dim=1)
    return w[:, :k].contiguous()
