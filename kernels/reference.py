"""Reference arithmetic of the Anda processing element (ground truth for every anda_gemm kernel).

For activations packed as Anda bit planes (groups of 64 along K) and an INT4 weight, every output
y[t, n] is computed exactly as the PE does:

    for each 64-group g and bit plane p (MSB first):
        S[g, p] = sum_j bit_p[j] * sign[j] * (q[n, 64g + j] - z)          # exact integer
    acc[g] = shift-accumulate over planes: acc = 2 * acc + S[g, p]        # exact integer
    y[t, n] = sum_g float32( acc[g] * 2**(E[g] - 15 - (M - 1)) * scale[n, 64g // group_size] )

|S| <= 64 * 15 and |acc| < 2**26, so the planes are summed exactly in float64 (products and sums of
small integers), acc is exact in int64, and acc * 2**e * scale (26 x 24 significant bits) is exact
in float64; the only roundings are the cast of each group's term to float32 and the float32
accumulation over groups, in group order. Work is chunked over tokens to bound memory.
"""
from __future__ import annotations

import torch

from andactl.formats.anda import GROUP_SIZE, pow2
from andactl.formats.int4_layout import centered_codes

_CHUNK_ELEMS = 1 << 22  # bound on tokens * groups * planes * N elements per chunk


def _signed_planes(words: torch.Tensor) -> torch.Tensor:
    """float64 [T, G, M, 64] of bit * (+1 | -1) from words int64 [T, G, 1+M]."""
    pos = torch.arange(64, device=words.device)
    bits = (words.unsqueeze(-1) >> pos) & 1  # arithmetic shift: bit 63 reads as 1 correctly
    sign = 1 - 2 * bits[:, :, :1, :]  # [T, G, 1, 64]
    return (bits[:, :, 1:, :] * sign).to(torch.float64)


def anda_gemm_reference(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int,
                        w_packed: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
                        group_size: int) -> torch.Tensor:
    """y float32 [..., N] = packed activations [..., k] times W^T, with the PE arithmetic above.

    Equals F.linear(unpack(words, exponents), dequantize_int4(W)) up to float32 rounding order.
    Arguments are assumed valid (the ops wrapper validates them).
    """
    m = int(mantissa_bits)
    lead, g = exponents.shape[:-1], exponents.shape[-1]
    n = w_packed.shape[0]
    w = words.reshape(-1, g, 1 + m)
    e = exponents.reshape(-1, g).to(torch.int32)
    t_all = w.shape[0]
    out = torch.zeros(t_all, n, dtype=torch.float32, device=words.device)
    if g == 0 or n == 0 or t_all == 0:
        return out.reshape(*lead, n)
    # (q - z) for the first 64*G columns, as [G, 64, N] float64 (padding columns are never hit by
    # a set activation bit, since padded activations have m = 0).
    qz = centered_codes(w_packed, w_zeros, group_size)[:, : g * GROUP_SIZE]
    qz = qz.reshape(n, g, GROUP_SIZE).permute(1, 2, 0).to(torch.float64)
    wgroup = torch.arange(g, device=words.device) * GROUP_SIZE // group_size
    scale = w_scales[:, wgroup].t().to(torch.float64).unsqueeze(1)  # [G, 1, N]
    step = max(1, _CHUNK_ELEMS // max(1, g * m * n))
    for t0 in range(0, t_all, step):
        planes = _signed_planes(w[t0:t0 + step])  # [t, G, M, 64]
        t = planes.shape[0]
        a = planes.permute(1, 0, 2, 3).reshape(g, t * m, GROUP_SIZE)
        s = torch.bmm(a, qz).reshape(g, t, m, n).to(torch.int64)  # exact integer plane sums
        acc = torch.zeros(g, t, n, dtype=torch.int64, device=words.device)
        for p in range(m):  # MSB first: shift-accumulate
            acc = acc * 2 + s[:, :, p, :]
        unit = pow2(e[t0:t0 + step].t() - (15 + m - 1), torch.float64).unsqueeze(-1)  # [G, t, 1]
        terms = (acc.to(torch.float64) * unit * scale).to(torch.float32)  # exact, then one rounding
        y = torch.zeros(t, n, dtype=torch.float32, device=words.device)
        for gi in range(g):  # float32 accumulation over groups, in order
            y += terms[gi]
        out[t0:t0 + step] = y
    return out.reshape(*lead, n)
