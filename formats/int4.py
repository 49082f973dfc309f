"""Group-wise INT4 weights (round-to-nearest), in the packed layout of the Anda GEMM.

Conventions (GPTQ's, see Frantar et al. 2022 and its reference quantizer):

- Groups of ``group_size`` consecutive input columns (K) of ``W[N, K]``; ``group_size`` is a positive
  multiple of 64 (the Anda activation group, so every weight group covers whole activation
  groups) or ``-1`` for one group per row, in which case the effective group size is
  ``Kw = ceil(K / 64) * 64``. Columns ``K..Kw-1`` are padding whose code is the zero point.
- Symmetric: zero point 8 (signed value ``q - 8`` in -8..7), ``scale = 2 * absmax / 15``
  (= absmax / 7.5). ``w / scale`` lies in [-7.5, 7.5]; round-to-nearest then clamp to [-8, 7]
  only changes the single point +7.5, so ``|w - ŵ| <= scale / 2`` for every element.
- Asymmetric: the group range is widened to include 0 (``lo = min(min w, 0)``,
  ``hi = max(max w, 0)``) so that 0 is exactly representable, ``scale = (hi - lo) / 15``,
  ``zero = clamp(round(-lo / scale), 0, 15)``; again ``|w - ŵ| <= scale / 2``.
- A group whose range is 0 (all zeros) gets ``scale = 1`` (never 0 or NaN) and dequantizes to 0.
- Every scale is rounded UP to the next float16-representable value (``fp16_scale_up``) when it is
  within float16's range, so the artifact stores it as float16 and the loaded float32 scale equals
  the one the quantizer used bit for bit (formats/int4_storage.py). Rounding up only shrinks
  ``|w / scale|``, so the bounds above still hold.
- Dequantized ``W[n, k] = (q[n, k] - z[n, k // g]) * scale[n, k // g]`` in float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from andactl.errors import ConfigError

from andactl.formats.anda import GROUP_SIZE as ANDA_GROUP
from andactl.formats.int4_layout import SYMMETRIC_ZERO as SYM_ZERO
from andactl.formats.int4_layout import pack_int4, unpack_int4


def resolve_group_size(group_size: int, in_features: int) -> int:
    """The effective group size for ``in_features`` columns; ConfigError for invalid values.

    Invariant: the result is a positive multiple of 64 (``-1`` becomes ceil(K/64)*64)."""
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise ConfigError(f"INT4 group_size must be an integer, got {group_size!r}")
    if group_size == -1:
        return max(1, -(-in_features // ANDA_GROUP)) * ANDA_GROUP
    if group_size <= 0 or group_size % ANDA_GROUP:
        raise ConfigError(
            f"INT4 group_size must be a positive multiple of {ANDA_GROUP} (the Anda group) or -1 "
            f"for one group per row, got {group_size}"
        )
    return group_size


def group_params(w: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point of each row of ``w[N, g']`` (one group per row).

    Returns float32 ``scale[N]`` (always > 0) and float32 ``zero[N]`` (8 when symmetric, else an
    integer in 0..15)."""
    w = w.float()
    if symmetric:
        absmax = w.abs().amax(dim=1)
        scale = absmax / 7.5
        zero = torch.full_like(scale, float(SYM_ZERO))
    else:
        lo = w.amin(dim=1).clamp(max=0.0)
        hi = w.amax(dim=1).clamp(min=0.0)
        scale = (hi - lo) / 15.0
        zero = None
    scale = fp16_scale_up(torch.where(scale > 0, scale, torch.ones_like(scale)))
    if zero is None:
        zero = torch.round(-lo / scale).clamp(0, 15)
    return scale, zero


def fp16_scale_up(scale: torch.Tensor) -> torch.Tensor:
    """float32 ``scale`` (> 0) rounded up to the smallest float16-representable value >= it; values
    beyond float16's range stay as they are (the artifact then keeps that scale tensor in float32)."""
    s = scale.float()
    h = s.to(torch.float16)
    short = h.float() < s
    bumped = (h.view(torch.int16) + 1).view(torch.float16)  # next float16 up (positive values)
    up = torch.where(short, bumped, h).float()
    return torch.where(torch.isfinite(up), up, s)


def quantize_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Codes ``clamp(round(w / scale) + zero, 0, 15)`` (float32), scale/zero broadcast over ``w``."""
    return torch.clamp(torch.round(w.float() / scale) + zero, 0, 15)


@dataclass
class Int4Weight:
    """An INT4 weight, unpacked: ``codes`` uint8 [N, Kw] (0..15, padding = zero point),
    ``scales`` float32 [N, Kw/g], ``zeros`` uint8 [N, Kw/g] (None means symmetric, zero point 8),
    ``group_size`` the effective (multiple-of-64) group size, ``in_features`` the true K."""

    codes: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor | None
    group_size: int
    in_features: int

    @property
    def out_features(self) -> int:
        return self.codes.shape[0]

    @property
    def padded_in_features(self) -> int:
        return self.codes.shape[1]

    @property
    def symmetric(self) -> bool:
        return self.zeros is None

    def zero_points(self) -> torch.Tensor:
        """Zero point per group as float32 [N, Kw/g]."""
        if self.zeros is None:
            return torch.full_like(self.scales, float(SYM_ZERO))
        return self.zeros.float()

    def rows(self, start: int, stop: int) -> "Int4Weight":
        """Output rows ``start:stop`` (a separate weight; groups and padding unchanged)."""
        zeros = None if self.zeros is None else self.zeros[start:stop].clone()
        return Int4Weight(self.codes[start:stop].clone(), self.scales[start:stop].clone(), zeros,
                          self.group_size, self.in_features)

    def dequantize(self) -> torch.Tensor:
        """float32 [N, K]: ``(q - z) * scale`` per group, padding columns dropped."""
        g = self.group_size
        n, kw = self.codes.shape
        q = self.codes.float().view(n, kw // g, g)
        w = (q - self.zero_points().unsqueeze(-1)) * self.scales.unsqueeze(-1)
        return w.reshape(n, kw)[:, : self.in_features].contiguous()

    def packed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(w_packed uint8 [N, Kw/2], w_scales float32 [N, Kw/g], w_zeros uint8 | None)`` in the
        layout of ops_spec.md: byte b holds column 2b in its low nibble, 2b+1 in its high nibble."""
        return pack_nibbles(self.codes), self.scales.contiguous(), (
            None if self.zeros is None else self.zeros.contiguous()
        )

    @classmethod
    def from_packed(
        cls, w_packed: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
        group_size: int, in_features: int,
    ) -> "Int4Weight":
        """Inverse of ``packed``: exact for every tensor ``packed`` produces."""
        codes = unpack_nibbles(w_packed)
        g = resolve_group_size(group_size, in_features)
        if codes.shape[1] % g or w_scales.shape != (codes.shape[0], codes.shape[1] // g):
            raise ConfigError(
                f"INT4 weight shapes disagree: packed {tuple(w_packed.shape)}, scales "
                f"{tuple(w_scales.shape)}, group_size {g}"
            )
        return cls(codes, w_scales.float(), w_zeros, g, in_features)


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """uint8 [N, Kw] codes (0..15, Kw even) -> uint8 [N, Kw/2]; column 2b low nibble, 2b+1 high.
    Delegates to ``formats.int4_layout.pack_int4``, the owner of the layout."""
    return pack_int4(codes.to(torch.uint8).contiguous())


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of ``pack_nibbles`` (``formats.int4_layout.unpack_int4``)."""
    return unpack_int4(packed).contiguous()


def assemble(
    codes_k: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, symmetric: bool,
    group_size: int, in_features: int,
) -> Int4Weight:
    """Builds an Int4Weight from float codes over the K real columns (padding filled with the zero
    point of its group); ``scales``/``zeros`` are float [N, Kw/g]."""
    n, k = codes_k.shape
    g = group_size
    kw = -(-k // g) * g
    codes = torch.empty(n, kw, dtype=torch.uint8, device=codes_k.device)
    codes[:, :k] = codes_k.to(torch.uint8)
    if kw > k:
        codes[:, k:] = zeros[:, -1:].to(torch.uint8)
    zeros_u8 = None if symmetric else zeros.to(torch.uint8).contiguous()
    return Int4Weight(codes, scales.float().contiguous(), zeros_u8, g, in_features)


def quantize_weight_rtn(w: torch.Tensor, group_size: int = 128, symmetric: bool = True) -> Int4Weight:
    """Round-to-nearest group-wise INT4 of ``w[N, K]`` (conventions in the module docstring).

    Invariant: ``|w - result.dequantize()| <= scale / 2`` per element (up to float32 rounding)."""
    if w.dim() != 2:
        raise ConfigError(f"INT4 quantization expects a 2-D weight [N, K], got shape {tuple(w.shape)}")
    n, k = w.shape
    g = resolve_group_size(group_size, k)
    kw = -(-k // g) * g
    wp = torch.zeros(n, kw, dtype=torch.float32, device=w.device)
    wp[:, :k] = w.float()
    if not torch.isfinite(wp).all():
        from andactl.errors import NumericsError

        raise NumericsError("INT4 quantization: the weight contains NaN or Inf")
    groups = wp.view(n, kw // g, g)
    scale, zero = group_params(groups.reshape(-1, g), symmetric)
    scale, zero = scale.view(n, kw // g), zero.view(n, kw // g)
    codes = quantize_codes(groups, scale.unsqueeze(-1), zero.unsqueeze(-1)).reshape(n, kw)
    return assemble(codes[:, :k], scale, zero, symmetric, g, k)
