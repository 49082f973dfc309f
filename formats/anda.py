"""Anda grouped shared-exponent activation format (layout version 1, see docs/FORMAT.md).

A tensor ``x [..., K]`` is taken to float16, cut into groups of ``group_size`` (64 for the packed
layout) consecutive elements of the last dim (the tail group zero-padded), and every group gets
one shared exponent ``E = max(FP16 exponent field, 1)`` over the group. With ``M`` mantissa bits
(hidden bit included) the unit is ``u = 2**(E - 15 - (M - 1))`` and each element keeps a sign and
a magnitude ``m = floor(|x| / u)`` (truncate) or ``min(floor(|x| / u + 0.5), 2**M - 1)``
(nearest), always ``0 <= m < 2**M``. Decode: ``(-1)**s * m * u``.

Public API (stable): ``quantize`` (fake-quant), ``pack`` / ``unpack`` (bit planes, through the
``torch.ops.andactl`` ops), ``AndaPacked``, ``shared_exponents``, ``to_float16``,
``check_mantissa_bits``, ``check_rounding``; ``pack_planes`` / ``unpack_planes`` are the
pure-torch reference codec the ops register.

Exactness: ``|x| * 2**-e`` and ``m * 2**e`` with power-of-two factors built from exponent bits
are exact in float32 (every value stays a normal float32), ``trunc``/``floor`` are exact, and
``floor(fl(v + 0.5)) == floor(v + 0.5)`` because ``v`` has at most 11 significant bits, so the
float32 fake-quant equals the integer definition bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from andactl.errors import ConfigError, NumericsError

GROUP_SIZE = 64  # elements per Anda group (the one home of this constant)
EXPONENT_BITS = 5  # bits of the shared exponent per group
ACTIVATION_TYPES = ("qkv", "o", "u", "d")  # inputs of q/k/v, o, up+gate, down projections
ROUNDINGS = ("truncate", "nearest")
FP16_MAX = 65504.0
MIN_MANTISSA_BITS = 1
MAX_MANTISSA_BITS = 16
_ROWS_ELEMS = 1 << 21  # element budget per chunk in the bit-plane codec (bounded memory)


@dataclass
class AndaPacked:
    """Bit-plane packed activations: ``words`` int64 [..., G, 1+M] (sign word, then planes MSB
    first), ``exponents`` uint8 [..., G], the mantissa bits, the true length ``k`` of the last
    dim and the dtype of the tensor that was packed (``unpack`` returns that dtype)."""

    words: torch.Tensor
    exponents: torch.Tensor
    mantissa_bits: int
    k: int
    dtype: torch.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the tensor that was packed."""
        return (*self.exponents.shape[:-1], self.k)


def check_mantissa_bits(mantissa_bits: int) -> int:
    """Return ``mantissa_bits`` as int; ConfigError unless it is an integer in 1..16."""
    if isinstance(mantissa_bits, bool) or not isinstance(mantissa_bits, int):
        raise ConfigError(f"mantissa bits must be an integer in 1..16, got {mantissa_bits!r}")
    if not MIN_MANTISSA_BITS <= mantissa_bits <= MAX_MANTISSA_BITS:
        raise ConfigError(f"mantissa bits must be in 1..16, got {mantissa_bits}")
    return int(mantissa_bits)


def check_rounding(rounding: str) -> str:
    """Return ``rounding``; ConfigError unless it is 'truncate' or 'nearest'."""
    if rounding not in ROUNDINGS:
        raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    return rounding


def check_group_size(group_size: int) -> int:
    """Return ``group_size``; ConfigError unless it is a positive integer."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ConfigError(f"group size must be a positive integer, got {group_size!r}")
    return group_size


def check_representable(x: torch.Tensor) -> None:
    """NumericsError unless every value of x is finite with |x| <= 65504 (float16-representable
    range); ConfigError unless x is a floating tensor with at least one dimension."""
    _check_input(x)
    if x.numel() == 0:
        return
    mn, mx = torch.aminmax(x)
    # compare in float32: in bfloat16, 65504 itself rounds to 65536 and 65536 would pass
    if bool(torch.maximum(mx, mn.neg()).float() <= FP16_MAX):  # NaN fails the comparison
        return
    n_nan = int(torch.isnan(x).sum())
    if n_nan:
        raise NumericsError(f"activation tensor contains NaN ({n_nan} values); Anda cannot encode it")
    n_inf = int(torch.isinf(x).sum())
    if n_inf:
        raise NumericsError(f"activation tensor contains Inf ({n_inf} values); Anda cannot encode it")
    big = float(x.abs().amax())
    raise NumericsError(f"activation value {big:.6g} overflows float16 (|x| > 65504); Anda cannot encode it")


def to_float16(x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` as float16 [..., K] after ``check_representable`` (NaN, Inf or |x| > 65504 ->
    NumericsError; a non-floating or 0-dimensional tensor -> ConfigError)."""
    check_representable(x)
    return x.to(torch.float16)


def _grouped(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """View [..., K] as [..., G, group_size], zero-padding the tail group."""
    k = x.shape[-1]
    g = -(-k // group_size)
    if g * group_size != k:
        x = F.pad(x, (0, g * group_size - k))
    return x.reshape(*x.shape[:-1], g, group_size)


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ConfigError(f"Anda input must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() == 0:
        raise ConfigError("Anda input must have at least one dimension (groups run along the last)")


def _grouped_checked(x: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x grouped [..., G, gs] in its own dtype, E int32 [..., G]); NumericsError on bad values.

    E is the FP16 exponent field of fp16(max |x|) over the group (rounding to fp16 is monotone, so
    this is the max field of the fp16 values), at least 1. One aminmax pass over x both finds it
    and validates the input (NaN propagates through the max and fails the range test).
    """
    _check_input(x)
    xg = _grouped(x, group_size)
    if xg.numel() == 0:
        return xg, torch.ones(xg.shape[:-1], dtype=torch.int32, device=x.device)
    mn, mx = torch.aminmax(xg, dim=-1)
    amax = torch.maximum(mx, mn.neg())
    if not bool(amax.max().float() <= FP16_MAX):  # float32: in bf16, 65504 rounds to 65536
        check_representable(x)  # raises the precise NumericsError
        raise NumericsError("activation tensor cannot be represented in float16")
    fields = amax.to(torch.float16).view(torch.int16) >> 10  # amax >= 0 (a -0.0 gives -32 -> 1)
    return xg, fields.clamp_min(1).to(torch.int32)


def pow2(exponent: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Exactly ``2**exponent`` for an integer tensor, built from the float's exponent bits.

    Keeps the invariant that the result is a normal number: exponent must lie in the normal range
    of ``dtype`` (float32: -126..127, float64: -1022..1023); callers stay far inside it.
    """
    if dtype == torch.float32:
        return ((exponent.to(torch.int32) + 127) << 23).view(torch.float32)
    if dtype == torch.float64:
        return ((exponent.to(torch.int64) + 1023) << 52).view(torch.float64)
    raise ValueError(f"pow2 supports float32/float64, not {dtype}")


def shared_exponents(x16: torch.Tensor, group_size: int = GROUP_SIZE) -> torch.Tensor:
    """Shared exponents uint8 [..., ceil(K/group_size)] of a float16 tensor [..., K].

    E = max over the group of the FP16 exponent field with field 0 (zero/subnormal) counted as 1;
    an all-zero (or padding-only) group has E = 1. Always 1 <= E <= 30 for finite float16 input.
    """
    if x16.dtype != torch.float16:
        raise ConfigError(f"shared_exponents expects a float16 tensor, got {x16.dtype}")
    return _grouped_checked(x16, check_group_size(group_size))[1].to(torch.uint8)


def _scaled(xg: torch.Tensor, e: torch.Tensor, mantissa_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(v, u): v = fp16(x) / u as float32 [..., G, gs] (exact, a fresh tensor), u float32 [..., G, 1]."""
    shift = (e - (15 + mantissa_bits - 1)).unsqueeze(-1)
    v = xg.to(torch.float16).to(torch.float32).mul_(pow2(-shift))
    return v, pow2(shift)


def _signed_magnitudes(v: torch.Tensor, mantissa_bits: int, rounding: str) -> torch.Tensor:
    """In place: v (= x/u) -> (-1)**s * m as float32, the sign of v (also of -0.0) kept."""
    if rounding == "truncate":
        return v.trunc_()
    m = v.abs().add_(0.5).floor_().clamp_max_(float(2**mantissa_bits - 1))
    return torch.copysign(m, v)


def quantize(
    x: torch.Tensor, mantissa_bits: int, group_size: int = GROUP_SIZE, rounding: str = "truncate"
) -> torch.Tensor:
    """Anda fake-quant (encode + decode) along the last dim; same shape and dtype as ``x``.

    The input is taken to float16 (NumericsError on NaN/Inf/overflow), the result is computed
    exactly in float32 and cast to x.dtype, so with group_size 64
    ``quantize(x, M) == unpack(pack(x, M))`` bit for bit. Any positive group_size is allowed for
    experiments (the tail group is zero-padded). Signs follow the float16 input (-0.0 stays -0.0).
    """
    m_bits = check_mantissa_bits(mantissa_bits)
    check_rounding(rounding)
    gs = check_group_size(group_size)
    xg, e = _grouped_checked(x, gs)
    v, u = _scaled(xg, e, m_bits)
    xhat = _signed_magnitudes(v, m_bits, rounding).mul_(u)
    xhat = xhat.reshape(*x.shape[:-1], -1)[..., : x.shape[-1]]
    return xhat.to(x.dtype)


def _rows(t: torch.Tensor, trailing: int) -> torch.Tensor:
    """Flatten all but the last ``trailing`` dims into one row dim."""
    return t.reshape(-1, *t.shape[t.dim() - trailing:])


def _bit_weights(device: torch.device) -> torch.Tensor:
    """int64 [64]: 1 << j; entry 63 is -2**63 (bit 63 set through the two's-complement wrap)."""
    return torch.ones(64, dtype=torch.int64, device=device) << torch.arange(64, device=device)


def pack_planes(x: torch.Tensor, mantissa_bits: int, rounding: str = "truncate") -> tuple[torch.Tensor, torch.Tensor]:
    """Reference bit-plane encoder: (words int64 [..., G, 1+M], exponents uint8 [..., G]).

    words[..., g, 0] bit j = sign of element 64g+j (the float16 sign, -0.0 -> 1); words[..., g, 1+p]
    bit j = bit (M-1-p) of m_j; padding elements are 0. Same magnitudes as ``quantize``.
    """
    m_bits = check_mantissa_bits(mantissa_bits)
    check_rounding(rounding)
    lead, k = x.shape[:-1], x.shape[-1]
    xg, e_all = _grouped_checked(x, GROUP_SIZE)
    xg, e_all = _rows(xg, 1), e_all.reshape(-1)  # [R, 64], [R]; R = rows * G
    words = torch.empty(xg.shape[0], 1 + m_bits, dtype=torch.int64, device=x.device)
    weights = _bit_weights(x.device)
    shifts = torch.arange(m_bits - 1, -1, -1, device=x.device).unsqueeze(-1)
    step = max(1, _ROWS_ELEMS // (GROUP_SIZE * (1 + m_bits)))
    for r0 in range(0, xg.shape[0], step):
        chunk = xg[r0:r0 + step]  # [r, 64]
        v, _ = _scaled(chunk, e_all[r0:r0 + step], m_bits)
        mag = _signed_magnitudes(v, m_bits, rounding).abs_().to(torch.int64)
        sign = torch.signbit(chunk.to(torch.float16)).to(torch.int64)  # sign of the fp16 value
        bits = torch.cat([sign.unsqueeze(1), (mag.unsqueeze(1) >> shifts) & 1], dim=1)  # [r, 1+M, 64]
        words[r0:r0 + step] = (bits * weights).sum(-1)  # distinct powers: no overflow
    g = -(-k // GROUP_SIZE)
    return words.reshape(*lead, g, 1 + m_bits), e_all.to(torch.uint8).reshape(*lead, g)


def unpack_planes(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int) -> torch.Tensor:
    """Reference bit-plane decoder: float32 [..., k] with x̂ = (-1)**s * m * 2**(E-15-(M-1)), exact.

    Inverse of ``pack_planes`` up to the encoding loss: decode(encode(x)) == quantize(x) in float32.
    """
    m_bits = check_mantissa_bits(mantissa_bits)
    lead, g = exponents.shape[:-1], exponents.shape[-1]
    w = _rows(words, 1)  # [R, 1+M]
    e = exponents.reshape(-1).to(torch.int32)
    out = torch.empty(w.shape[0], GROUP_SIZE, dtype=torch.float32, device=words.device)
    pos = torch.arange(64, device=words.device)
    shifts = torch.arange(m_bits - 1, -1, -1, device=words.device).unsqueeze(-1)
    step = max(1, _ROWS_ELEMS // (GROUP_SIZE * (1 + m_bits)))
    for r0 in range(0, w.shape[0], step):
        bits = (w[r0:r0 + step].unsqueeze(-1) >> pos) & 1  # [r, 1+M, 64]; >> is arithmetic
        mag = (bits[:, 1:] << shifts).sum(1).to(torch.float32)
        val = mag.mul_(pow2(e[r0:r0 + step] - (15 + m_bits - 1)).unsqueeze(-1))
        out[r0:r0 + step] = torch.where(bits[:, 0].bool(), -val, val)
    return out.reshape(*lead, g * GROUP_SIZE)[..., :k].contiguous()


def check_words(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int) -> int:
    """Validate packed activations; return G."""
    m = check_mantissa_bits(mantissa_bits)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"k must be a non-negative integer, got {k!r}")
    if words.dtype != torch.int64 or exponents.dtype != torch.uint8:
        raise ConfigError(f"Anda words must be int64 and exponents uint8, got {words.dtype} and {exponents.dtype}")
    g = -(-k // GROUP_SIZE)
    if exponents.dim() < 1 or tuple(words.shape) != (*exponents.shape, 1 + m) or exponents.shape[-1] != g:
        raise ConfigError(f"Anda words {tuple(words.shape)} / exponents {tuple(exponents.shape)} do not match "
                          f"k={k}, M={m} (expected [..., {g}, {1 + m}] and [..., {g}])")
    if exponents.numel() and not bool(((exponents >= 1) & (exponents <= 30)).all()):
        raise ConfigError("Anda exponents must be in 1..30")
    return g


def pack(x: torch.Tensor, mantissa_bits: int, rounding: str = "truncate") -> AndaPacked:
    """Pack ``x [..., K]`` into Anda bit planes (group 64) with the pure-torch bit-plane codec (``pack_planes``; the kernels
    in ``andactl.kernels.ops`` compute the same bits).

    Invariant: ``unpack(pack(x, M, r)) == quantize(x, M, 64, r)`` bit for bit.
    """
    check_mantissa_bits(mantissa_bits)
    check_rounding(rounding)
    check_representable(x)
    words, exps = pack_planes(x, mantissa_bits, rounding)
    return AndaPacked(words, exps, int(mantissa_bits), int(x.shape[-1]), x.dtype)


def unpack(packed: AndaPacked) -> torch.Tensor:
    """Decode an ``AndaPacked`` to ``packed.dtype`` [..., k] (exact float32 values cast once)."""
    check_words(packed.words, packed.exponents, packed.mantissa_bits, packed.k)
    out = unpack_planes(packed.words, packed.exponents, packed.mantissa_bits, packed.k)
    return out.to(packed.dtype)


def unit_exponent(e: int, mantissa_bits: int) -> int:
    """log2 of the unit u of a group with shared exponent ``e``: e - 15 - (M - 1)."""
    return int(e) - 15 - (int(mantissa_bits) - 1)


def element_units(x16: torch.Tensor, mantissa_bits: int) -> torch.Tensor:
    """float32 [..., K]: each element's group unit u = 2**(E-15-(M-1)), the strict truncation error bound."""
    k = x16.shape[-1]
    e = _grouped_checked(x16, GROUP_SIZE)[1]
    u = pow2(e - (15 + mantissa_bits - 1)).unsqueeze(-1).expand(*e.shape, GROUP_SIZE)
    return u.reshape(*x16.shape[:-1], -1)[..., :k]


__all__ = [
    "AndaPacked", "GROUP_SIZE", "EXPONENT_BITS", "ACTIVATION_TYPES", "ROUNDINGS", "FP16_MAX", "quantize", "pack", "unpack", "pack_planes",
    "unpack_planes", "shared_exponents", "to_float16", "check_mantissa_bits", "check_rounding",
    "check_group_size", "check_representable", "pow2", "unit_exponent", "element_units",
]
