"""Anda codec: fake-quant, bit-plane pack/unpack, bounds, golden vectors, errors, storage."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from andactl.errors import ConfigError, NumericsError
from andactl.formats import anda, anda_storage

INT_VIEW = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32}


def make_fp16(shape: tuple[int, ...], seed: int, mode: str) -> torch.Tensor:
    """Finite float16 test data: raw bit patterns, narrow exponent ranges, normals, sparse/subnormal."""
    g = torch.Generator().manual_seed(seed)
    if mode in ("bits", "narrow", "subnormal"):
        lo, hi = {"bits": (0, 31), "subnormal": (0, 1)}.get(mode, (0, 0))
        if mode == "narrow":
            lo = int(torch.randint(0, 27, (1,), generator=g))
            hi = lo + 4
        field = torch.randint(lo, hi, shape, generator=g, dtype=torch.int32)
        mant = torch.randint(0, 1024, shape, generator=g, dtype=torch.int32)
        sign = torch.randint(0, 2, shape, generator=g, dtype=torch.int32)
        bits = (sign << 15) | (field << 10) | mant
        return (bits - 65536 * (bits >= 32768).int()).to(torch.int16).view(torch.float16)
    x = torch.randn(shape, generator=g) * 10.0 ** float(torch.randint(-6, 4, (1,), generator=g))
    if mode == "sparse":
        x = x * (torch.rand(shape, generator=g) < 0.3)
        x = torch.where(torch.rand(shape, generator=g) < 0.1, torch.full_like(x, -0.0), x)
    return x.clamp(-60000, 60000).to(torch.float16)


@st.composite
def fp16_tensors(draw):
    lead = draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    k = draw(st.one_of(st.sampled_from([1, 63, 64, 65, 130]), st.integers(1, 200)))
    seed = draw(st.integers(0, 2**31 - 1))
    mode = draw(st.sampled_from(["bits", "narrow", "normal", "sparse", "subnormal"]))
    return make_fp16((*lead, k), seed, mode)


def oracle(x16: torch.Tensor, m_bits: int, rounding: str, group_size: int) -> list[Fraction]:
    """Scalar definition from the spec, in exact rationals, for a 1-D float16 tensor."""
    pats = [b & 0xFFFF for b in x16.view(torch.int16).tolist()]
    out: list[Fraction] = []
    for g0 in range(0, len(pats), group_size):
        grp = pats[g0:g0 + group_size]
        e = max(max((b >> 10) & 0x1F, 1) for b in grp)
        unit = Fraction(2) ** (e - 15 - (m_bits - 1))
        for b in grp:
            f, mant = (b >> 10) & 0x1F, b & 0x3FF
            mag = Fraction(mant + (1024 if f else 0)) * Fraction(2) ** (max(f, 1) - 25)
            q = math.floor(mag / unit) if rounding == "truncate" else min(math.floor(mag / unit + Fraction(1, 2)),
                                                                           2**m_bits - 1)
            out.append((-1 if b >> 15 else 1) * q * unit)
    return out


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(INT_VIEW[a.dtype]), b.view(INT_VIEW[b.dtype]))


@settings(max_examples=150, deadline=None)
@given(x16=fp16_tensors(), m_bits=st.integers(1, 16), rounding=st.sampled_from(anda.ROUNDINGS),
       dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32]))
def test_pack_unpack_equals_quantize_bit_exact(x16, m_bits, rounding, dtype):
    x = x16.to(dtype)
    # bf16 rounds fp16 values near 65504 up to 65536, outside the codec's domain (its rejection is
    # tested separately): such draws are not examples of this property
    assume(bool(x.float().abs().max() <= 65504))
    packed = anda.pack(x, m_bits, rounding)
    g = -(-x.shape[-1] // 64)
    assert packed.words.shape == (*x.shape[:-1], g, 1 + m_bits) and packed.words.dtype == torch.int64
    assert packed.exponents.shape == (*x.shape[:-1], g) and packed.exponents.dtype == torch.uint8
    words, exps = anda.pack_planes(x, m_bits, rounding)  # the pure-torch reference codec itself
    assert torch.equal(words, packed.words) and torch.equal(exps, packed.exponents)
    assert bits_equal(anda.unpack_planes(words, exps, m_bits, x.shape[-1]), anda.quantize(x.float(), m_bits, rounding=rounding))
    out = anda.unpack(packed)
    ref = anda.quantize(x, m_bits, rounding=rounding)
    assert ref.dtype == dtype and ref.shape == x.shape
    assert bits_equal(out, ref)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 150), m_bits=st.integers(1, 16),
       rounding=st.sampled_from(anda.ROUNDINGS), group_size=st.sampled_from([1, 7, 32, 64, 100]),
       mode=st.sampled_from(["bits", "narrow", "sparse", "subnormal"]))
def test_quantize_matches_scalar_oracle(seed, k, m_bits, rounding, group_size, mode):
    x16 = make_fp16((k,), seed, mode)
    got = anda.quantize(x16.float(), m_bits, group_size, rounding)
    want = oracle(x16, m_bits, rounding, group_size)
    assert [Fraction(v) for v in got.tolist()] == want
    signs = [math.copysign(1.0, v) for v in got.tolist()]
    assert signs == [math.copysign(1.0, v) for v in x16.float().tolist()]  # -0.0 keeps its sign


@settings(max_examples=80, deadline=None)
@given(x16=fp16_tensors(), m_bits=st.integers(1, 16))
def test_error_bounds(x16, m_bits):
    u = anda.element_units(x16, m_bits).double()
    x = x16.double()
    err_t = (x - anda.quantize(x16.float(), m_bits).double()).abs()
    assert bool((err_t < u).all())
    q_n = anda.quantize(x16.float(), m_bits, rounding="nearest").double()
    err_n = (x - q_n).abs()
    capped = (q_n.abs() / u) == 2**m_bits - 1
    assert bool((err_n[~capped] <= u[~capped] / 2).all())
    assert bool((err_n < u).all())  # the cap at 2**M - 1 can cost up to (not including) one unit


@settings(max_examples=40, deadline=None)
@given(x16=fp16_tensors(), rounding=st.sampled_from(anda.ROUNDINGS))
def test_error_non_increasing_in_mantissa_bits(x16, rounding):
    x = x16.double()
    errs = [(x - anda.quantize(x16.float(), m, rounding=rounding).double()).abs() for m in range(1, 17)]
    for lo, hi in zip(errs, errs[1:]):
        assert bool((hi <= lo).all())


@settings(max_examples=40, deadline=None)
@given(x16=fp16_tensors(), rounding=st.sampled_from(anda.ROUNDINGS))
def test_exact_once_enough_bits(x16, rounding):
    fields = ((x16.view(torch.int16) >> 10) & 0x1F).long().clamp_min(1)
    e = anda.shared_exponents(x16).long().repeat_interleave(64, -1)[..., : x16.shape[-1]]
    need = 11 + e - fields  # M at which an element becomes exact
    for m in range(1, 17):
        q = anda.quantize(x16.float(), m, rounding=rounding)
        ok = need <= m
        assert torch.equal(q[ok], x16.float()[ok])
    same = make_fp16((4, 64), 7, "narrow")
    same = same.view(torch.int16).bitwise_and(~0x7C00).bitwise_or(14 << 10).view(torch.float16)  # one field
    assert bits_equal(anda.quantize(same, 11), same)
    assert not torch.equal(anda.quantize(same, 10), same)


def test_zero_and_subnormal_groups():
    z = torch.tensor([0.0, -0.0] * 32)
    p = anda.pack(z, 5)
    assert p.exponents.tolist() == [1]
    assert p.words[0, 0].item() == sum(1 << j for j in range(1, 64, 2)) - (1 << 64)  # odd bits incl. 63
    assert p.words[0, 1:].tolist() == [0] * 5
    assert bits_equal(anda.unpack(p), z)
    sub = torch.arange(1, 1024, dtype=torch.int16).view(torch.float16)  # every positive subnormal
    assert anda.shared_exponents(sub).tolist() == [1] * 16
    assert bits_equal(anda.quantize(sub, 11), sub)  # E = 1, e_i = 1: exact at M = 11
    assert torch.equal(anda.quantize(sub.float(), 1), torch.zeros(1023))  # u = 2**-14 > every subnormal


def test_bit_63_via_sign_wrap():
    w = anda._bit_weights(torch.device("cpu"))
    assert w[63].item() == -(2**63) and w[62].item() == 2**62
    x = torch.zeros(64)
    x[63] = -1.0
    words = anda.pack(x, 1).words
    assert words.tolist() == [[-(2**63), -(2**63)]]  # sign bit 63 and plane bit 63 (m = 1)
    assert anda.unpack(anda.pack(x, 1))[63].item() == -1.0


# Golden vectors, worked by hand from the spec.
def test_golden_simple_group_m3():
    # [1.0, -0.5, 0.75, 0...]: fields 15, 14, 14 -> E = 15, u = 2**(15-15-2) = 0.25.
    # m = [4, 2, 3, 0] = [0b100, 0b010, 0b011, 0]; sign word: bit 1 -> 2.
    # plane 0 (bit 2): elem 0 -> 1; plane 1 (bit 1): elems 1, 2 -> 0b110 = 6; plane 2 (bit 0): elem 2 -> 4.
    x = torch.tensor([1.0, -0.5, 0.75] + [0.0] * 61)
    p = anda.pack(x, 3)
    assert p.exponents.tolist() == [15]
    assert p.words.tolist() == [[2, 1, 6, 4]]
    assert torch.equal(anda.unpack(p), x)


def test_golden_subnormal_group_m4():
    # All subnormal (field 0 counts as 1) -> E = 1, u = 2**(1-15-3) = 2**-17; value = mant * 2**-24,
    # so m = mant >> 7: 0x3FF -> 7, -0x200 -> 4, 0x080 -> 1, 0x07F -> 0, elem 63 = -0x001 -> 0.
    # sign word: bits 1 and 63 -> 2 - 2**63. planes (bits 3..0 of m = [7, 4, 1, 0]):
    # bit 3: none -> 0; bit 2: elems 0, 1 -> 3; bit 1: elem 0 -> 1; bit 0: elems 0, 2 -> 5.
    pats = [0] * 64
    pats[0], pats[1], pats[2], pats[3], pats[63] = 0x03FF, 0x8200, 0x0080, 0x007F, 0x8001
    x16 = torch.tensor([p - 65536 if p >= 32768 else p for p in pats], dtype=torch.int16).view(torch.float16)
    p = anda.pack(x16, 4)
    assert p.exponents.tolist() == [1]
    assert p.words.tolist() == [[2 - 2**63, 0, 3, 1, 5]]
    dec = anda.unpack(p).float()
    assert dec[:4].tolist() == [7 * 2**-17, -4 * 2**-17, 2**-17, 0.0]
    assert math.copysign(1.0, dec[63].item()) == -1.0 and dec[63].item() == 0.0


def test_golden_mixed_magnitudes_tail_nearest_m2():
    # K = 65 -> 2 groups. Group 0: [65504, 1, -3000, 12288, 0, -0.0, 0...]; 65504 has field 30 ->
    # E = 30, u = 2**(30-15-1) = 16384. |x|/u = [3.998, 6e-5, 0.183, 0.75, 0, 0]:
    # nearest m = [min(4, 3) = 3, 0, 0, 1, 0, 0]; truncate m = [3, 0, 0, 0, 0, 0].
    # sign word: elems 2 and 5 -> 4 + 32 = 36. nearest planes: bit 1: elem 0 -> 1; bit 0: elems 0, 3 -> 9.
    # Group 1: [0.0] -> E = 1, all words 0.
    x = torch.zeros(65)
    x[0], x[1], x[2], x[3], x[5] = 65504.0, 1.0, -3000.0, 12288.0, -0.0
    p = anda.pack(x, 2, "nearest")
    assert p.exponents.tolist() == [30, 1]
    assert p.words.tolist() == [[36, 1, 9], [0, 0, 0]]
    assert anda.unpack(p)[:6].tolist() == [49152.0, 0.0, -0.0, 16384.0, 0.0, -0.0]
    assert anda.pack(x, 2).words.tolist() == [[36, 1, 1], [0, 0, 0]]


@pytest.mark.parametrize("k", [1, 63, 65, 130])
def test_odd_k_and_leading_dims(k):
    x = make_fp16((2, 3, k), k, "narrow").float()
    p = anda.pack(x, 6)
    g = -(-k // 64)
    assert p.words.shape == (2, 3, g, 7) and p.exponents.shape == (2, 3, g) and p.shape == (2, 3, k)
    assert bits_equal(anda.unpack(p), anda.quantize(x, 6))
    for i in range(2):  # rows are independent
        assert bits_equal(anda.quantize(x[i], 6), anda.quantize(x, 6)[i])
    tail = k % 64
    if tail:  # padding elements of the tail group are 0 in every word
        mask = ((1 << tail) - 1)
        assert bool(((p.words[..., -1, :] & ~mask) == 0).all())


def test_group_size_other_than_64():
    x = make_fp16((5, 100), 3, "bits").float()
    q32 = anda.quantize(x, 5, group_size=32)
    halves = torch.cat([anda.quantize(x[:, i:i + 32], 5, group_size=32) for i in range(0, 100, 32)], -1)
    assert bits_equal(q32, halves)


@pytest.mark.parametrize("fn", ["quantize", "pack"])
def test_numerics_errors(fn):
    call = (lambda t: anda.quantize(t, 4)) if fn == "quantize" else (lambda t: anda.pack(t, 4))
    for bad, word in ((float("nan"), "NaN"), (float("inf"), "Inf"), (-float("inf"), "Inf"), (65519.0, "overflows")):
        x = torch.ones(3, 70)
        x[1, 5] = bad
        with pytest.raises(NumericsError, match=word):
            call(x)
    with pytest.raises(NumericsError, match="overflows"):
        call(torch.full((64,), 1e5, dtype=torch.bfloat16))
    assert call(torch.full((64,), 65504.0)) is not None


@pytest.mark.parametrize("bad", [0, 17, -1, True, 4.0, "4"])
def test_mantissa_bits_out_of_range(bad):
    x = torch.ones(64)
    with pytest.raises(ConfigError):
        anda.quantize(x, bad)
    with pytest.raises(ConfigError):
        anda.pack(x, bad)
    with pytest.raises(ConfigError):
        anda_storage.group_bits(bad)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="rounding"):
        anda.quantize(torch.ones(64), 4, rounding="round")
    with pytest.raises(ConfigError):
        anda.quantize(torch.ones(64, dtype=torch.int32), 4)
    with pytest.raises(ConfigError):
        anda.quantize(torch.tensor(1.0), 4)
    with pytest.raises(ConfigError):
        anda.quantize(torch.ones(64), 4, group_size=0)
    p = anda.pack(torch.ones(2, 70), 4)
    with pytest.raises(ConfigError, match="do not match"):
        anda.unpack(anda.AndaPacked(p.words, p.exponents, 5, 70, torch.float32))
    with pytest.raises(ConfigError, match="do not match"):
        anda.unpack(anda.AndaPacked(p.words, p.exponents, 4, 130, torch.float32))


def test_storage_accounting():
    assert [anda_storage.group_bits(m) for m in (1, 4, 8, 16)] == [133, 325, 581, 1093]
    assert anda_storage.bits_per_element(4) == 325 / 64
    assert anda_storage.packed_bits(65, 4) == 2 * 325
    assert anda_storage.packed_bits((2, 3, 65), 4) == 6 * 2 * 325
    p = anda.pack(torch.ones(2, 3, 130), 7)
    assert anda_storage.packed_bits(p.shape, 7) == p.words.numel() * 64 + p.exponents.numel() * 5
    mem = anda_storage.activation_memory({"qkv": 8, "o": 6, "u": 5, "d": [4, 9]},
                                         {"qkv": [576, 576], "o": [576, 500], "u": [576, 576], "d": [1536, 1536]}, 10)
    assert mem["qkv"] == 10 * 2 * 9 * 581
    assert mem["o"] == 10 * (9 + 8) * 453
    assert mem["u"] == 10 * 2 * 9 * 389
    assert mem["d"] == 10 * 24 * (325 + 645)
    assert mem["total"] == mem["qkv"] + mem["o"] + mem["u"] + mem["d"]
    with pytest.raises(ConfigError):
        anda_storage.activation_memory({"qkv": 8}, {"o": [576]}, 10)
    with pytest.raises(ConfigError):
        anda_storage.activation_memory({"d": [4]}, {"d": [576, 576]}, 10)


def test_bfloat16_just_above_fp16_range_is_refused():
    """65536 is representable in bfloat16 but overflows float16 (the check must not run in bf16)."""
    x = torch.tensor([[1.0, 65536.0]], dtype=torch.bfloat16)
    with pytest.raises(NumericsError, match="overflows float16"):
        anda.quantize(x, 8)
    assert anda.quantize(torch.tensor([[1.0, 65504.0]]), 11)[0, 1] == 65504.0
