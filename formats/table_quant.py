"""Group-wise symmetric INT8/INT4 quantization of large tables: the LM head ([V, D], groups along
the input dim D) and the token embedding ([V, D], one row per token, groups along D).

Layout (what the artifact stores, module-local names):
    weight_packed  uint8 [R, C]      INT8: q + 128;  INT4: two codes per byte, (q + 8) of column
                   or [R, ceil(C/2)] 2j in the low nibble and of column 2j+1 in the high nibble
    weight_scale   fp16  [R, ceil(C/group)]
Dequantization: w_hat[r, c] = q[r, c] * scale[r, c // group], q in [-qmax, qmax], qmax = 127 / 7.

Invariants: |w - w_hat| <= scale / 2 element-wise (the stored fp16 scale is rounded UP so that
qmax * scale >= the group's absmax: no clipping) unless ``clip`` is set, in which case each group's
scale is the one of ``CLIP_RATIOS`` x absmax with the least squared error (elements inside
[-qmax * scale, qmax * scale] keep the s/2 bound, the others are clipped to it; the layout and
dequantization do not change); a group of zeros dequantizes to zeros;
``dequantize_rows(..., idx)`` equals ``dequantize(...)[idx]`` bit for bit.
"""
from __future__ import annotations

import torch

from andactl.errors import ConfigError

TABLE_BITS = {"int8": 8, "int4": 4}
QMAX = {8: 127, 4: 7}
DEFAULT_TABLE_GROUP = 64
_FP16_MIN_NORMAL = 2.0 ** -14


def parse_table_bits(name: str) -> int | None:
    """8, 4 or None ("none"); ConfigError otherwise."""
    if name == "none":
        return None
    if name not in TABLE_BITS:
        raise ConfigError(f"unknown table quantization {name!r}; choose int8, int4 or none")
    return TABLE_BITS[name]


def _check(bits: int, group: int) -> None:
    if bits not in QMAX:
        raise ConfigError(f"table quantization supports 8 or 4 bits, got {bits}")
    if group < 1:
        raise ConfigError(f"table group size must be >= 1, got {group}")


def fp16_scale(amax: torch.Tensor, qmax: int) -> torch.Tensor:
    """Smallest fp16 scale with ``qmax * scale >= amax`` (fp16 normal minimum for tiny groups)."""
    s = (amax / qmax).clamp_min(_FP16_MIN_NORMAL).to(torch.float16)
    short = s.float() * qmax < amax
    bumped = (s.view(torch.int16) + 1).view(torch.float16)  # next fp16 up (positive values)
    return torch.where(short, bumped, s)


CLIP_RATIOS = tuple(1.0 - 0.05 * i for i in range(11))  # 1.0 .. 0.5 of the group's absmax


TABLE_ROW_BLOCK = 4096  # rows quantized at once: float32 working copies of this many rows, never of the whole table


def quantize(w: torch.Tensor, bits: int, group: int = DEFAULT_TABLE_GROUP,
             clip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight_packed uint8, weight_scale fp16) of the 2-D float table ``w`` (see module doc).
    Every row is quantized on its own, TABLE_ROW_BLOCK rows at a time, so the float32 working copies
    stay a block's (quantizing SmolLM2's 49,152 x 576 table whole took 0.38 GB beside it; stop 63)
    and the result does not depend on the block."""
    _check(bits, group)
    if w.dim() != 2:
        raise ConfigError(f"table quantization needs a 2-D tensor, got shape {list(w.shape)}")
    if not torch.isfinite(w).all():
        raise ConfigError("table quantization: the table holds NaN or Inf")
    rows, cols = w.shape
    packed = torch.empty(rows, cols if bits == 8 else -(-cols // 2), dtype=torch.uint8, device=w.device)
    scale = torch.empty(rows, -(-cols // group), dtype=torch.float16, device=w.device)
    for start in range(0, rows, TABLE_ROW_BLOCK):
        block = slice(start, start + TABLE_ROW_BLOCK)
        packed[block], scale[block] = _quantize_rows(w[block], bits, group, clip)
    return packed, scale


def _quantize_rows(w: torch.Tensor, bits: int, group: int, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``quantize`` of the rows ``w`` (finite, 2-D), in one piece."""
    rows, cols = w.shape
    n_groups = -(-cols // group)
    wf = torch.zeros(rows, n_groups * group, dtype=torch.float32, device=w.device)
    wf[:, :cols] = w.float()
    g = wf.view(rows, n_groups, group)
    qmax = QMAX[bits]
    amax = g.abs().amax(dim=2)
    scale = fp16_scale(amax, qmax)
    if clip:
        best = None
        for ratio in CLIP_RATIOS:
            s = fp16_scale(amax * ratio, qmax)
            sf = s.float().unsqueeze(2)
            err = ((torch.round(g / sf).clamp_(-qmax, qmax) * sf - g) ** 2).sum(dim=2)
            if best is None:
                best, scale = err, s
            else:
                better = err < best
                best, scale = torch.where(better, err, best), torch.where(better, s, scale)
    q = codes(g, scale.float().unsqueeze(2), bits).to(torch.int16)
    q = q.view(rows, -1)[:, :cols]
    return pack_codes(q, bits), scale


def codes(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed codes (float) of ``w`` on the grid ``scale * [-qmax, qmax]`` (round half to even)."""
    qmax = QMAX[bits]
    return torch.round(w / scale).clamp_(-qmax, qmax)


def pack_codes(q: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed codes [R, C] -> uint8 storage (INT8: q+128; INT4: nibble pairs, low nibble first)."""
    if bits == 8:
        return (q.to(torch.int16) + 128).to(torch.uint8)
    rows, cols = q.shape
    u = torch.zeros(rows, cols + (cols % 2), dtype=torch.uint8, device=q.device)
    u[:, :cols] = (q.to(torch.int16) + 8).to(torch.uint8)
    return u[:, 0::2] | (u[:, 1::2] << 4)


def unpack_codes(packed: torch.Tensor, bits: int, cols: int) -> torch.Tensor:
    """Inverse of ``pack_codes``: signed int16 codes [R, cols]."""
    if bits == 8:
        return packed.to(torch.int16) - 128
    lo = (packed & 0x0F).to(torch.int16) - 8
    hi = (packed >> 4).to(torch.int16) - 8
    return torch.stack((lo, hi), dim=-1).view(packed.shape[0], -1)[:, :cols]


def dequantize(packed: torch.Tensor, scale: torch.Tensor, bits: int, cols: int, group: int = DEFAULT_TABLE_GROUP,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The float table [R, cols]: codes times their group's scale, computed in float32."""
    _check(bits, group)
    q = unpack_codes(packed, bits, cols).float()
    rows, n_groups = q.shape[0], scale.shape[1]
    if n_groups * group != cols:  # a last partial group: pad with zero codes, cut afterwards
        q = torch.cat([q, q.new_zeros(rows, n_groups * group - cols)], dim=1)
    w = q.view(rows, n_groups, group) * scale.float().unsqueeze(2)  # one float32 product per code
    return w.view(rows, -1)[:, :cols].to(dtype).contiguous()


def dequantize_rows(packed: torch.Tensor, scale: torch.Tensor, idx: torch.Tensor, bits: int, cols: int,
                    group: int = DEFAULT_TABLE_GROUP, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rows ``idx`` (any shape of indices) of the dequantized table, shape [*idx.shape, cols];
    only the gathered rows are decoded (the embedding lookup)."""
    flat = idx.reshape(-1)
    rows = dequantize(packed.index_select(0, flat), scale.index_select(0, flat), bits, cols, group, dtype)
    return rows.view(*idx.shape, cols)


def stored_bytes(rows: int, cols: int, bits: int, group: int = DEFAULT_TABLE_GROUP) -> int:
    """Bytes of weight_packed + weight_scale for a [rows, cols] table."""
    packed_cols = cols if bits == 8 else -(-cols // 2)
    return rows * packed_cols + rows * (-(-cols // group)) * 2
