"""The fused CPU op ``andactl::anda_linear`` (quantize + prepacked GEMM + bias + run dtype in one call)
equals pack + prepacked GEMM + bias + cast BIT FOR BIT at every SIMD level this CPU has, on the
GEMM grid (M = 1..16, awkward K, leading dims, zero groups, extreme ranges); bf16 in/out is within
bf16 rounding of the float32 reference; AndaLinear runs it and keeps its caches out of state."""
from __future__ import annotations

import pytest
import torch
from test_kernels_cpp import _RES, _awkward, _each_isa, _weights

from andactl.errors import NumericsError
from andactl.kernels import fused, prepack

pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")


def _operands(n, k, gs, asym, gen, half_scales=False):
    """Fused operands and the canonical ones; ``half_scales`` rounds the scales to float16 values
    (what artifacts store), so the blocked scales are float16."""
    wp, sc, z = _weights(n, k, gs, asym, gen)
    if half_scales:
        sc = sc.half().float()
    return (prepack.prepack_reference(wp), *fused.block_scales(sc, z)), (wp, sc, z)


def _unfused(x, m, rounding, wpp, sc, z, bias, gs, n):
    """What AndaLinear computed before the fused op: pack, prepacked GEMM, float32 bias, cast."""
    words, exps = torch.ops.andactl.anda_pack(x, m, rounding)
    y = torch.ops.andactl.anda_gemm_prepacked(words, exps, m, x.shape[-1], wpp, sc, z, gs, n)
    return (y + bias.float() if bias is not None else y).to(x.dtype)


@pytest.mark.parametrize("m", list(range(1, 17)))
def test_fused_equals_unfused_bit_exact(m):
    gen = torch.Generator().manual_seed(100 + m)
    cases = [((), 1, 64, 17, False, torch.float32), ((3,), 63, 64, 1, True, torch.bfloat16),
             ((2, 5), 100, 128, 17, False, torch.float16), ((9,), 576, 256, 64, True, torch.float32),
             ((2, 5), 576, 64, 17, True, torch.bfloat16), ((16,), 200, 128, 80, False, torch.float32),
             ((7,), 130, 64, 33, True, torch.bfloat16)]
    for i, (lead, k, gs, n, asym, dt) in enumerate(cases):
        rounding = ("truncate", "nearest")[i % 2]
        x = _awkward((*lead, k), gen).to(dt)
        (wpp, scb, zb), (_, sc, z) = _operands(n, k, gs, asym, gen, half_scales=i % 2 == 1)
        assert scb.dtype == (torch.float16 if i % 2 else torch.float32)
        bias = torch.randn(n, generator=gen).to(dt) if i % 3 else None
        for level in _each_isa():  # (levels differ in FMA contraction: compare within a level)
            want = _unfused(x, m, rounding, wpp, sc, z, bias, gs, n)
            got = fused.anda_linear(x, m, rounding, wpp, scb, zb, bias, gs, n)
            assert got.dtype == dt and got.shape == want.shape
            assert torch.equal(got, want), (level, lead, k, n, dt)


def test_work_items_of_every_size_equal_one_thread_bit_exact():
    """The work items (4..16 blocks on the micro-kernel paths, AMX panels at 8 tokens, a partial last
    item) split the rows differently at 1 and 2 threads: same bits as the unfused op on one thread,
    at every level, for 1, 3 and 8 tokens (N = 1205: 76 blocks, the last one 5 rows). The weight
    prefetches, which stop at each item's end, are hints and cannot change a result."""
    gen = torch.Generator().manual_seed(21)
    n, k, gs = 1205, 576, 64
    (wpp, scb, zb), (_, sc, z) = _operands(n, k, gs, True, gen, half_scales=True)
    threads = torch.get_num_threads()
    try:
        for t in (1, 3, 8):
            x = _awkward((t, k), gen).to(torch.bfloat16)
            for level in _each_isa():
                torch.set_num_threads(1)
                want = _unfused(x, 8, "nearest", wpp, sc, z, None, gs, n)
                for th in (1, 2):
                    torch.set_num_threads(th)
                    got = fused.anda_linear(x, 8, "nearest", wpp, scb, zb, None, gs, n)
                    assert torch.equal(got, want), (level, t, th)
    finally:
        torch.set_num_threads(threads)


def test_float32_inputs_round_to_float16_exactly_like_torch():
    """float32 rows are rounded to float16 inside the op (scalar and F16C paths): at exact ties
    between two float16 values (round half to even), just beside them, in the subnormal range and
    at the top of the range, with one value per 64-group and M = 16 so every rounding shows in y."""
    gen = torch.Generator().manual_seed(11)
    bits = torch.randint(1, 0x7BFF, (192,), generator=gen, dtype=torch.int32)
    bits[:32] = torch.arange(1, 33, dtype=torch.int32)  # subnormals
    bits[-1] = 0x7BFE  # 65472: its tie with 65504 rounds to even (65504)
    lo = bits.to(torch.int16).view(torch.float16).double()
    hi = (bits + 1).to(torch.int16).view(torch.float16).double()
    mid = (lo + hi) / 2
    vals = torch.cat([mid, mid + (hi - lo) / 1024, mid - (hi - lo) / 1024, lo]).float()
    vals = vals * torch.where(torch.rand(vals.shape, generator=gen) < 0.5, -1.0, 1.0)
    x = torch.zeros(4, vals.numel() // 4 * 64)
    x.view(4, -1, 64)[:, :, 5] = vals.view(4, -1)
    k = x.shape[1]
    (wpp, scb, zb), (_, sc, z) = _operands(17, k, 128, True, gen)
    for level in _each_isa():
        want = _unfused(x, 16, "truncate", wpp, sc, z, None, 128, 17)
        got = fused.anda_linear(x, 16, "truncate", wpp, scb, zb, None, 128, 17)
        assert torch.equal(got, want), level
        for bad in (65504.5, 65519.0, float("nan"), float("inf")):
            xb = x.clone()
            xb[2, 7] = bad
            with pytest.raises(RuntimeError, match="overflows float16"):
                torch.ops.andactl.anda_linear(xb, 16, "truncate", wpp, scb, zb, None, 128, 17)


def test_bfloat16_inputs_round_to_float16_exactly_like_torch():
    """bfloat16 rows are converted inside the op (no float16 copy of x first): every bfloat16 bit
    pattern from the float16 subnormal range (where the conversion rounds) to 65280 gives what
    x.to(float16) gives, and values past 65504 (or NaN/Inf) are refused."""
    gen = torch.Generator().manual_seed(12)
    bits = torch.arange(0x3000, 0x4780, 7, dtype=torch.int32)  # 2^-31 .. 65280, every 7th pattern
    vals = bits.to(torch.int16).view(torch.bfloat16)
    vals = vals * torch.where(torch.rand(vals.shape, generator=gen) < 0.5, -1.0, 1.0).bfloat16()
    groups = -(-vals.numel() // 4)
    x = torch.zeros(4, groups * 64, dtype=torch.bfloat16)
    x.view(4, -1, 64)[:, :, 9].view(-1)[: vals.numel()] = vals
    k = x.shape[1]
    (wpp, scb, zb), (_, sc, z) = _operands(17, k, 128, True, gen)
    for level in _each_isa():
        words, exps = torch.ops.andactl.anda_pack(x.half(), 16, "truncate")  # torch's conversion
        want = torch.ops.andactl.anda_gemm_prepacked(words, exps, 16, k, wpp, sc, z, 128, 17).bfloat16()
        got = fused.anda_linear(x, 16, "truncate", wpp, scb, zb, None, 128, 17)
        assert got.dtype == torch.bfloat16 and torch.equal(got, want), level
        for bad in (65536.0, 1e30, float("nan"), float("inf")):
            xb = x.clone()
            xb[2, 7] = bad
            with pytest.raises(RuntimeError, match="overflows float16"):
                torch.ops.andactl.anda_linear(xb, 16, "truncate", wpp, scb, zb, None, 128, 17)


def test_fused_matches_python_reference_and_zero_groups():
    """The C++ kernel against the op's pure-torch reference (PE arithmetic), zero and empty inputs."""
    gen = torch.Generator().manual_seed(7)
    (wpp, scb, zb), _ = _operands(40, 300, 128, True, gen)
    bias = torch.randn(40, generator=gen)
    for x in (_awkward((5, 300), gen), torch.zeros(3, 300)):
        ref = fused._linear_ref(x, 6, "nearest", wpp, scb, zb, bias, 128, 40)
        for _level in _each_isa():
            got = torch.ops.andactl.anda_linear(x, 6, "nearest", wpp, scb, zb, bias, 128, 40)
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=float(ref.abs().max()) * 1e-6)
    empty = torch.ops.andactl.anda_linear(torch.ones(0, 300), 6, "truncate", wpp, scb, zb, bias, 128, 40)
    assert empty.shape == (0, 40)
    torch.library.opcheck(torch.ops.andactl.anda_linear.default,
                          (_awkward((2, 300), gen), 5, "truncate", wpp, scb, zb, bias, 128, 40))


def test_block_scales_round_trip():
    """Blocked copies hold the canonical values exactly: float16 scales only when every scale is a
    float16 value (one that is not, or one beyond float16's range, keeps them float32)."""
    gen = torch.Generator().manual_seed(8)
    _, (_, sc, z) = _operands(37, 256, 64, True, gen)
    for scales, dt in ((sc, torch.float32), (sc.half().float(), torch.float16)):
        scb, zb = fused.block_scales(scales, z)
        assert scb.shape == (3, 4, 16) and scb.dtype == dt and zb.dtype == torch.uint8
        sc2, z2 = fused.unblock_scales(scb, zb, 37)
        assert sc2.dtype == torch.float32 and torch.equal(sc2, scales) and torch.equal(z2, z)
    half = sc.half().float()
    for bad in (1e5, 2.0 ** -30, 0.1):  # beyond float16, below its subnormals, not a float16 value
        odd = half.clone()
        odd[5, 2] = bad
        assert fused.block_scales(odd, z)[0].dtype == torch.float32
        assert torch.equal(fused.unblock_scales(*fused.block_scales(odd, z), 37)[0], odd)
    assert torch.equal(fused.block_scales(sc, None)[1], torch.full((1, 4, 16), 8, dtype=torch.uint8))
    assert torch.equal(fused.unblock_scales(*fused.block_scales(sc, None), 37)[1], torch.full_like(z, 8))


@pytest.mark.parametrize("asym", [False, True])
def test_float16_blocked_scales_equal_float32_ones_at_every_level(asym):
    """The kernels read float16 blocked scales (converted in registers; widened once per call on the
    AMX path) to the same result, bit for bit, as float32 copies of the same values: decode (1 token,
    the one-token AVX-512 kernel), micro-kernel tiles, the AMX threshold and beyond, one to three
    mantissa chunks, float16 subnormal and largest scales."""
    gen = torch.Generator().manual_seed(12)
    n, k, gs = 72, 448, 64
    (wpp, scb, zb), (_, sc, _z) = _operands(n, k, gs, asym, gen, half_scales=True)
    sc = sc.clone()
    sc[3, 1], sc[40, 6], sc[70, 0] = 2.0 ** -24, 65504.0, 2.0 ** -20  # subnormal, largest, subnormal
    scb, zb = fused.block_scales(sc, _z)
    assert scb.dtype == torch.float16
    scb32 = scb.float()
    bias = torch.randn(n, generator=gen)
    for t in (1, 2, 5, 8, 9, 16, 33):
        x = _awkward((t, k), gen)
        for m in (4, 9, 16):  # 1, 2 and 3 chunks of 7 bits
            for level in _each_isa():
                for dt in (torch.float32, torch.bfloat16):
                    got = fused.anda_linear(x.to(dt), m, "truncate", wpp, scb, zb, bias.to(dt), gs, n)
                    want = fused.anda_linear(x.to(dt), m, "truncate", wpp, scb32, zb, bias.to(dt), gs, n)
                    assert torch.equal(got, want), (level, t, m, dt)


def test_bf16_in_out_within_bf16_of_fp32_reference():
    """bf16 activations in, bf16 out: within bf16 rounding (rel 2^-8 of the output scale, plus the
    input's own bf16 rounding carried through the GEMM) of the float32 result on the same input."""
    gen = torch.Generator().manual_seed(9)
    (wpp, scb, zb), _ = _operands(96, 576, 64, False, gen)
    xb = torch.randn(4, 11, 576, generator=gen).bfloat16()
    bias = torch.randn(96, generator=gen).bfloat16()
    for _level in _each_isa():
        yb = fused.anda_linear(xb, 8, "truncate", wpp, scb, zb, bias, 64, 96)
        y32 = fused.anda_linear(xb.float(), 8, "truncate", wpp, scb, zb, bias.float(), 64, 96)
        assert yb.dtype == torch.bfloat16
        assert torch.equal(yb, y32.bfloat16())  # same integers, one final rounding
        torch.testing.assert_close(yb.float(), y32, rtol=2 ** -8, atol=float(y32.abs().max()) * 2 ** -8)


def test_bf16_output_rounding_equals_torch_at_denormals_nan_and_inf():
    """bf16 out at every level, on both sides of the tile path's threshold (3 and 32 tokens):
    each value is torch's float32 -> bfloat16 rounding of the float32 result, also where the
    outputs are denormal (a hardware conversion such as VCVTNEPS2BF16 would flush them to zero)
    and where the bias makes them NaN or infinite."""
    gen = torch.Generator().manual_seed(21)
    n, k = 40, 192
    wp, sc, z = _weights(n, k, 64, True, gen)
    sc = sc * torch.logspace(-36, -44, n).unsqueeze(1)  # columns from normal to denormal outputs
    wpp, scb, zb = prepack.prepack_reference(wp), *fused.block_scales(sc, z)
    bias = torch.zeros(n)
    bias[[3, 17, 35]] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    for t in (3, 32):
        x = torch.randn(t, k, generator=gen).bfloat16()
        x[1, :64] = 0  # a zero group: +-0 outputs where the bias is zero
        for level in _each_isa():
            for b in (None, bias):
                yb = fused.anda_linear(x, 8, "truncate", wpp, scb, zb, None if b is None else b.bfloat16(), 64, n)
                y32 = fused.anda_linear(x.float(), 8, "truncate", wpp, scb, zb,
                                        None if b is None else b.bfloat16().float(), 64, n)
                want = y32.bfloat16()
                assert (y32.abs() < torch.finfo(torch.float32).tiny).logical_and(y32 != 0).any()
                assert torch.equal(yb.view(torch.int16), want.view(torch.int16)), (level, t, b is None)


def test_fused_wrapper_rejects_bad_inputs():
    from andactl.errors import ConfigError

    gen = torch.Generator().manual_seed(10)
    (wpp, scb, zb), _ = _operands(17, 100, 64, False, gen)
    x = torch.randn(2, 100, generator=gen)
    with pytest.raises(ConfigError, match="w_prepacked"):
        fused.anda_linear(x, 4, "truncate", wpp[:1], scb, zb, None, 64, 17)
    with pytest.raises(ConfigError, match="blocked zero points"):
        fused.anda_linear(x, 4, "truncate", wpp, scb, zb.float(), None, 64, 17)
    with pytest.raises(ConfigError, match="bias"):
        fused.anda_linear(x, 4, "truncate", wpp, scb, zb, torch.zeros(3), 64, 17)
    with pytest.raises(ConfigError, match="float16"):
        fused.anda_linear(x.double(), 4, "truncate", wpp, scb, zb, None, 64, 17)
    with pytest.raises(RuntimeError, match="float16|NaN"):
        torch.ops.andactl.anda_linear(torch.full((1, 100), 7e4), 4, "truncate", wpp, scb, zb, None, 64, 17)


def test_anda_linear_module_uses_fused_op_in_run_dtype():
    """cpp backend: bf16 in -> bf16 out equal to the unfused path, fp32 equal to it bit for bit;
    the fused operands are cached out of state and dropped on .to(); NaN is a NumericsError."""
    from andactl.models.anda_linear import AndaLinear

    gen = torch.Generator().manual_seed(11)
    wp, sc, z = _weights(48, 200, 64, True, gen)
    mod = AndaLinear.from_int4(wp, sc, z, torch.randn(48, generator=gen), 200, 64, 6, backend="cpp")
    x = _awkward((3, 4, 200), gen)
    y = mod(x)
    ops_ = mod.fused_operands()
    assert ops_ is not None and mod.fused_operands() is ops_ and ops_[0] is mod.prepacked_weight()
    assert set(mod.state_dict()) == {"weight_packed", "weight_scale", "weight_zero_point", "bias"}
    assert torch.equal(y, _unfused(x, 6, "truncate", ops_[0], sc, z, mod.bias, 64, 48))
    mod.to(torch.bfloat16)
    assert mod._fused_cache is None and mod.bias.dtype == torch.bfloat16
    yb = mod(x.bfloat16())
    assert yb.dtype == torch.bfloat16
    assert torch.equal(yb, _unfused(x.bfloat16(), 6, "truncate", mod.prepacked_weight(), sc, z, mod.bias, 64, 48))
    ref = AndaLinear.from_int4(wp, sc, z, mod.bias.float(), 200, 64, 6, backend="reference")
    torch.testing.assert_close(yb.float(), ref(x.bfloat16().float()), rtol=2 ** -7, atol=float(yb.abs().max()) * 2 ** -7)
    bad = x.clone()
    bad[0, 0, 3] = float("nan")
    with pytest.raises(NumericsError):
        mod(bad.bfloat16())
