"""Compact on-disk form of packed INT4 linears (format 2, both forms readable).

In memory an ``AndaLinear`` holds ``weight_packed`` uint8 [N, Kw/2] (K zero-padded to Kw, a multiple
of the group size, padding code = the group's zero point) and float32 ``weight_scale``
[N, Kw/g] (formats/int4_layout.py). On disk the artifact stores:

- ``weight_packed`` trimmed to the real K: uint8 [N, ceil(K/2)] (when K is odd the last byte's
  high nibble is the padding code it had in memory);
- ``weight_scale`` as float16 when every value is exactly float16-representable (the quantizer
  rounds scales up to float16 values, formats/int4.py ``fp16_scale_up``), else float32.

``expand`` re-pads deterministically with the zero point (8, or the stored ``weight_zero_point``
of the last group) and widens float16 scales to float32, so the kernel's input after loading is
bit-identical to the in-memory tensors before saving. Full-width / float32 tensors (artifacts
written before this module) pass through unchanged.
"""
from __future__ import annotations

import torch

from andactl.formats.int4_layout import SYMMETRIC_ZERO, pack_int4, padded_k, unpack_int4


def trimmed_bytes(k: int) -> int:
    """Bytes per row of the on-disk codes of a K = k weight: ceil(k / 2)."""
    return -(-int(k) // 2)


def compact(tensors: dict[str, torch.Tensor], packed: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """``tensors`` with each packed module's codes trimmed and its scales in float16 where exact.
    ``packed``: module name -> (in_features K, group size). Input tensors are not modified. A
    ``meta`` scale (a streamed layer, not in memory) is planned as float16: the quantizer rounds
    every scale to a float16 value, and the writer checks exactness when it fetches the values."""
    out = dict(tensors)
    for name, (k, _group) in packed.items():
        codes = out.get(f"{name}.weight_packed")
        if codes is not None and codes.shape[1] > trimmed_bytes(k):
            out[f"{name}.weight_packed"] = codes[:, : trimmed_bytes(k)].contiguous()
        scale = out.get(f"{name}.weight_scale")
        if scale is not None and scale.dtype == torch.float32 and scale.device.type == "meta":
            out[f"{name}.weight_scale"] = torch.empty(scale.shape, dtype=torch.float16, device="meta")
        elif scale is not None and scale.dtype == torch.float32:
            half = scale.to(torch.float16)
            if torch.equal(half.float(), scale):
                out[f"{name}.weight_scale"] = half
    return out


def stored_shapes(n: int, k: int, group: int) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Shapes the reader accepts for a packed module's codes: the compact and the full width."""
    return {"weight_packed": ((n, trimmed_bytes(k)), (n, padded_k(k, group) // 2))}


def expand(codes: torch.Tensor, zeros: torch.Tensor | None, k: int, group: int) -> torch.Tensor:
    """Full-width codes uint8 [N, Kw/2] from stored (possibly trimmed) codes; padding columns get the
    zero point of the last group. Full-width input is returned unchanged."""
    kw = padded_k(k, group)
    if codes.shape[1] == kw // 2:
        return codes
    n = codes.shape[0]
    have = unpack_int4(codes)  # [N, 2 * ceil(K/2)]
    full = torch.empty(n, kw, dtype=torch.uint8, device=codes.device)
    full[:, : have.shape[1]] = have
    pad = SYMMETRIC_ZERO if zeros is None else zeros[:, -1:].to(torch.uint8)
    full[:, have.shape[1]:] = pad
    return pack_int4(full)
