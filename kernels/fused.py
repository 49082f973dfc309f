"""The fused op ``andactl::anda_linear``: Anda-quantize x, multiply by a prepacked INT4 weight, add
the bias and return x's dtype, in one call (the C++ extension registers the CPU kernel).

    anda_linear(x [..., K] f16|bf16|f32, M, rounding, w_prepacked, w_scales_blocked,
                w_zeros_blocked, bias?, group_size, n) -> [..., n] in x.dtype

``w_prepacked`` is ``int4_prepack``'s layout (kernels/prepack.py); the scales and zero points are
blocked like it (:func:`block_scales`): scales [NB, Gw, 16] float16 when every scale is exactly a
float16 value (what artifacts store; half the scale bytes a decode step streams) else float32,
zero points uint8 [NB, Gw, 16]; element [b, gw, l] = weight group gw of row 16b + l (rows >= n:
scale 0, zero 0); symmetric weights have ONE block of zero points [1, Gw, 16], all 8, shared by
every block (less memory traffic in decode). The blocked copies hold the canonical values
exactly, so the choice never changes a result. Invariant: the
result equals ``(anda_gemm_prepacked(*anda_pack(x, M, rounding), ...) + bias.float()).to(x.dtype)``
exactly (same float32 accumulation order, one rounding to the run dtype at the end).
"""
from __future__ import annotations

import torch

from andactl.errors import ConfigError
from andactl.formats import anda
from andactl.kernels import ops, prepack
from andactl.formats.int4_layout import SYMMETRIC_ZERO, padded_k
from andactl.kernels.reference import anda_gemm_reference

NAMESPACE = "andactl"
SCHEMA = ("anda_linear(Tensor x, int mantissa_bits, str rounding, Tensor w_prepacked, Tensor w_scales_blocked, "
          "Tensor w_zeros_blocked, Tensor? bias, int group_size, int n) -> Tensor")


def exact_in_float16(t: torch.Tensor) -> bool:
    """True when every value of float32 ``t`` is a float16 value (a round trip changes nothing)."""
    return bool(torch.equal(t.to(torch.float16).to(torch.float32), t))


def block_scales(w_scales: torch.Tensor, w_zeros: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scales [ceil(N/16), Gw, 16], uint8 zero points [ceil(N/16) or 1, Gw, 16]) copies of the
    canonical [N, Gw] scales / zero points (None: symmetric, one shared block of 8), holding the
    same values: the scales in float16 when :func:`exact_in_float16`, else float32. Padding rows
    hold scale 0 and zero 0."""
    n, gw = w_scales.shape
    nb = -(-n // prepack.BLOCK_ROWS)
    blk = lambda t: t.reshape(nb, prepack.BLOCK_ROWS, gw).transpose(1, 2).contiguous()  # noqa: E731
    sdt = torch.float16 if exact_in_float16(w_scales.to(torch.float32)) else torch.float32
    sc = torch.zeros(nb * prepack.BLOCK_ROWS, gw, dtype=sdt, device=w_scales.device)
    sc[:n] = w_scales
    if w_zeros is None:
        return blk(sc), torch.full((1, gw, prepack.BLOCK_ROWS), SYMMETRIC_ZERO, dtype=torch.uint8,
                                   device=w_scales.device)
    z = torch.zeros(nb * prepack.BLOCK_ROWS, gw, dtype=torch.uint8, device=w_scales.device)
    z[:n] = w_zeros
    return blk(sc), blk(z)


def unblock_scales(scb: torch.Tensor, zb: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical float32 scales and uint8 zero points [n, Gw] from the blocked copies."""
    unblk = lambda t: t.transpose(1, 2).reshape(-1, t.shape[1])[:n].contiguous()  # noqa: E731
    if zb.shape[0] == 1 and scb.shape[0] != 1:  # shared block (symmetric)
        zb = zb.expand(scb.shape[0], -1, -1)
    return unblk(scb).to(torch.float32), unblk(zb).to(torch.uint8)


def _linear_ref(x, mantissa_bits, rounding, w_prepacked, scb, zb, bias, group_size, n):
    words, exps = anda.pack_planes(x, mantissa_bits, rounding)
    sc, z = unblock_scales(scb, zb, n)
    w = prepack.unprepack_reference(w_prepacked, n)
    y = anda_gemm_reference(words, exps, mantissa_bits, x.shape[-1], w, sc, z, group_size)
    if bias is not None:
        y = y + bias.to(torch.float32)
    return y.to(x.dtype)


def _linear_fake(x, mantissa_bits, rounding, w_prepacked, scb, zb, bias, group_size, n):
    return x.new_empty((*x.shape[:-1], n))


_LIB = ops.define_ops("FRAGMENT", {"anda_linear": SCHEMA}, {"anda_linear": (_linear_ref, _linear_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def has_cpu_kernel() -> bool:
    """True when the C++ extension registered a CPU kernel for ``andactl::anda_linear``."""
    return ops.has_cpu_kernel("anda_linear")


def anda_linear(x: torch.Tensor, mantissa_bits: int, rounding: str, w_prepacked: torch.Tensor,
                w_scales_blocked: torch.Tensor, w_zeros_blocked: torch.Tensor, bias: torch.Tensor | None,
                group_size: int, n: int) -> torch.Tensor:
    """Validated call of the fused op (one-line ConfigError / NumericsError for a bad argument)."""
    if not isinstance(x, torch.Tensor) or x.dtype not in ops._ACT_DTYPES:
        raise ConfigError(f"anda_linear takes float16/bfloat16/float32, got {getattr(x, 'dtype', type(x))}")
    anda.check_mantissa_bits(mantissa_bits)
    anda.check_rounding(rounding)
    anda.check_representable(x)
    kw = padded_k(x.shape[-1], group_size)
    nb, gw = -(-int(n) // prepack.BLOCK_ROWS), kw // group_size
    if w_prepacked.dtype != torch.uint8 or tuple(w_prepacked.shape) != (nb, kw // 64, 16, 32):
        raise ConfigError(f"w_prepacked must be uint8 {[nb, kw // 64, 16, 32]}, got {w_prepacked.dtype} "
                          f"{tuple(w_prepacked.shape)}")
    for name, t, dts, rows in (("scales", w_scales_blocked, (torch.float32, torch.float16), (nb,)),
                               ("zero points", w_zeros_blocked, (torch.uint8,), (nb, 1))):
        if t.dtype not in dts or t.dim() != 3 or t.shape[0] not in rows or tuple(t.shape[1:]) != (gw, 16):
            want = " or ".join(str(d) for d in dts)
            raise ConfigError(f"blocked {name} must be {want} [{nb}, {gw}, 16], got {t.dtype} {tuple(t.shape)}")
    if bias is not None and tuple(bias.shape) != (n,):
        raise ConfigError(f"bias must have shape [{n}], got {tuple(bias.shape)}")
    return torch.ops.andactl.anda_linear(x, mantissa_bits, rounding, w_prepacked, w_scales_blocked,
                                         w_zeros_blocked, bias, group_size, n)


__all__ = ["SCHEMA", "exact_in_float16", "block_scales", "unblock_scales", "has_cpu_kernel", "anda_linear"]
