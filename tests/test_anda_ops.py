"""torch.ops.andactl: opcheck, PE-reference GEMM against F.linear, INT4 layout, AndaLinear, dispatch."""
from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from andactl.errors import ConfigError, NumericsError
from andactl.formats import anda
from andactl.kernels import ops
from andactl.models.anda_linear import AndaLinear
from andactl.kernels.reference import anda_gemm_reference


def random_int4(n: int, k: int, group_size: int, asymmetric: bool, seed: int):
    """Random codes/scales/zeros in the ops_spec layout; padding codes equal the zero point."""
    g = torch.Generator().manual_seed(seed)
    kw = ops.padded_k(k, group_size)
    codes = torch.randint(0, 16, (n, kw), generator=g, dtype=torch.uint8)
    scales = torch.rand(n, kw // group_size, generator=g) * 0.02 + 1e-3
    zeros = torch.randint(0, 16, (n, kw // group_size), generator=g, dtype=torch.uint8) if asymmetric else None
    zp = zeros.repeat_interleave(group_size, 1) if asymmetric else torch.full_like(codes, 8)
    codes[:, k:] = zp[:, k:]
    return ops.pack_int4(codes), scales, zeros, codes


def random_acts(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(torch.randn(shape, generator=g))  # mixed magnitudes
    x[..., ::7] = 0.0
    return x


def test_int4_layout_golden():
    codes = torch.tensor([[1, 2, 3, 4], [15, 0, 8, 9]], dtype=torch.uint8)
    packed = ops.pack_int4(codes)
    assert packed.tolist() == [[0x21, 0x43], [0x0F, 0x98]]  # low nibble = even column
    assert torch.equal(ops.unpack_int4(packed), codes)
    codes = torch.tensor([[9, 7] + [8] * 62], dtype=torch.uint8)  # K = 2, group 64, symmetric
    w = ops.dequantize_int4(ops.pack_int4(codes), torch.tensor([[0.5]]), None, 64, 2)
    assert w.tolist() == [[0.5, -0.5]]
    w = ops.dequantize_int4(ops.pack_int4(codes), torch.tensor([[0.25]]), torch.tensor([[7]], dtype=torch.uint8), 64, 2)
    assert w.tolist() == [[0.5, 0.0]]
    with pytest.raises(ConfigError):
        ops.pack_int4(torch.full((1, 2), 16, dtype=torch.uint8))
    with pytest.raises(ConfigError):
        ops.dequantize_int4(ops.pack_int4(codes), torch.tensor([[0.5]]), None, 96, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("k", [1, 64, 100])
def test_opcheck_pack_unpack(dtype, k):
    x = random_acts((3, k), k).to(dtype)
    for rounding in anda.ROUNDINGS:
        torch.library.opcheck(torch.ops.andactl.anda_pack.default, (x, 5, rounding))
    words, exps = ops.anda_pack(x, 5)
    torch.library.opcheck(torch.ops.andactl.anda_unpack.default, (words, exps, 5, k))


@pytest.mark.parametrize("asymmetric", [False, True])
def test_opcheck_gemm(asymmetric):
    w_packed, scales, zeros, _ = random_int4(17, 100, 128, asymmetric, 1)
    words, exps = ops.anda_pack(random_acts((2, 3, 100), 2), 6)
    torch.library.opcheck(torch.ops.andactl.anda_gemm.default, (words, exps, 6, 100, w_packed, scales, zeros, 128))


def test_gemm_golden():
    # x = [1.0, -0.5, 0.75, 0...] at M = 3: E = 15, m = [4, 2, 3], signs [+, -, +] (see format tests).
    # W row codes [9, 10, 4, 8...], symmetric z = 8 -> q - z = [1, 2, -4, 0...], scale 0.5.
    # planes (MSB first): p0 bits [1,0,0] -> S = 1; p1 bits [0,1,1] -> -2 - 4 = -6; p2 bits [0,0,1] -> -4.
    # acc = ((0*2 + 1)*2 - 6)*2 - 4 = -12; y = -12 * 2**(15-15-2) * 0.5 = -1.5
    # (check: 1*1 - 0.5*2 + 0.75*(-4) = -3.0 in units of the scale 0.5 -> -1.5).
    words, exps = ops.anda_pack(torch.tensor([1.0, -0.5, 0.75] + [0.0] * 61), 3)
    codes = torch.tensor([[9, 10, 4] + [8] * 61], dtype=torch.uint8)
    y = ops.anda_gemm(words, exps, 3, 64, ops.pack_int4(codes), torch.tensor([[0.5]]), None, 64)
    assert y.tolist() == [-1.5]


@pytest.mark.parametrize("group_size", [64, 128])
@pytest.mark.parametrize("asymmetric", [False, True])
@pytest.mark.parametrize("n", [1, 17, 64])
@pytest.mark.parametrize("k", [64, 100, 576])
def test_gemm_reference_matches_linear(k, n, asymmetric, group_size):
    w_packed, scales, zeros, codes = random_int4(n, k, group_size, asymmetric, k * n + group_size)
    w = ops.dequantize_int4(w_packed, scales, zeros, group_size, k)
    zp = zeros.repeat_interleave(group_size, 1) if asymmetric else torch.full_like(codes, 8)
    w64 = ((codes.double() - zp.double()) * scales.double().repeat_interleave(group_size, 1))[:, :k]
    for lead in ((3,), (2, 5)):
        x = random_acts((*lead, k), k + n)
        for m in (1, 4, 7, 8, 12, 16):
            words, exps = ops.anda_pack(x, m)
            xhat = ops.anda_unpack(words, exps, m, k)
            # the pure-torch PE reference itself (the op may dispatch to a C++ kernel if one is loaded)
            y = anda_gemm_reference(words, exps, m, k, w_packed, scales, zeros, group_size)
            assert y.dtype == torch.float32 and y.shape == (*lead, n)
            if m in (4, 16):
                y_op = ops.anda_gemm(words, exps, m, k, w_packed, scales, zeros, group_size)
                torch.testing.assert_close(y_op, y, rtol=1e-5, atol=1e-6 * float(y.abs().max()) + 1e-30)
            bound = xhat.double().abs() @ w64.abs().t()  # scale of the output
            exact = xhat.double() @ w64.t()
            assert bool(((y.double() - exact).abs() <= 1e-6 * bound + 1e-30).all())
            y_lin = F.linear(xhat, w)
            assert bool(((y - y_lin).abs() <= 1e-5 * (y_lin.abs() + bound.float()) + 1e-30).all())


def test_gemm_large_shape_bounded():
    w_packed, scales, zeros, _ = random_int4(1536, 576, 128, False, 0)
    words, exps = ops.anda_pack(random_acts((64, 576), 0), 16)
    y = ops.anda_gemm(words, exps, 16, 576, w_packed, scales, None, 128)
    y_lin = F.linear(ops.anda_unpack(words, exps, 16, 576), ops.dequantize_int4(w_packed, scales, None, 128, 576))
    torch.testing.assert_close(y, y_lin, rtol=1e-5, atol=1e-5 * float(y_lin.abs().max()))


def test_wrapper_errors():
    x = torch.randn(2, 100)
    with pytest.raises(NumericsError, match="NaN"):
        ops.anda_pack(torch.full((64,), float("nan")), 4)
    with pytest.raises(ConfigError):
        ops.anda_pack(x.double(), 4)
    with pytest.raises(ConfigError):
        ops.anda_pack(x, 17)
    words, exps = ops.anda_pack(x, 4)
    with pytest.raises(ConfigError, match="exponents"):
        ops.anda_unpack(words, torch.zeros_like(exps), 4, 100)
    w_packed, scales, zeros, _ = random_int4(5, 100, 128, False, 0)
    with pytest.raises(ConfigError, match="w_packed"):
        ops.anda_gemm(words, exps, 4, 100, w_packed[:, :10], scales, None, 128)
    with pytest.raises(ConfigError, match="w_scales"):
        ops.anda_gemm(words, exps, 4, 100, w_packed, scales.double(), None, 128)
    with pytest.raises(ConfigError, match="group size"):
        ops.anda_gemm(words, exps, 4, 100, w_packed, scales, None, 100)


@pytest.mark.filterwarnings("ignore:Warning only once for all operators:UserWarning")  # the override is the point
def test_backend_kernel_overrides_reference_and_reimport_is_harmless():
    words, exps = ops.anda_pack(torch.ones(2, 64), 4)
    calls = []

    def cpu_kernel(w, e, m, k):  # stands in for a C++ TORCH_LIBRARY_IMPL(andactl, CPU, m) kernel
        calls.append(k)
        return torch.full((*e.shape[:-1], k), 7.0)

    lib = torch.library.Library("andactl", "IMPL")
    try:
        lib.impl("anda_unpack", cpu_kernel, "CPU")
        assert torch.ops.andactl.anda_unpack(words, exps, 4, 64).unique().tolist() == [7.0] and calls == [64]
    finally:
        lib._destroy()
    assert torch.equal(torch.ops.andactl.anda_unpack(words, exps, 4, 64), torch.ones(2, 64))
    importlib.reload(ops)
    importlib.import_module("andactl.kernels.ops")
    assert torch.equal(ops.anda_unpack(words, exps, 4, 64), torch.ones(2, 64))


def _linear_pair(k, n, group_size, asymmetric, bias_dtype, m, seed):
    w_packed, scales, zeros, _ = random_int4(n, k, group_size, asymmetric, seed)
    bias = torch.randn(n, generator=torch.Generator().manual_seed(seed)).to(bias_dtype) if bias_dtype else None
    ref = AndaLinear.from_int4(w_packed, scales, zeros, bias, k, group_size, m)
    fast = AndaLinear.from_int4(w_packed, scales, zeros, bias, k, group_size, m, backend="ops")
    return ref, fast


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("asymmetric", [False, True])
def test_anda_linear_matches_fakequant_and_backends_agree(dtype, asymmetric):
    k, n, gs = 100, 33, 128
    for m in (3, 8, 13):
        ref, fast = _linear_pair(k, n, gs, asymmetric, dtype, m, m)
        x = random_acts((2, 3, k), m).to(dtype)
        w = ops.dequantize_int4(ref.weight_packed, ref.weight_scale, ref.weight_zero_point, gs, k)
        want32 = F.linear(anda.quantize(x.float(), m), w) + ref.bias.float()
        y_ref, y_fast = ref(x), fast(x)
        assert y_ref.dtype == dtype and y_ref.shape == (2, 3, n)
        assert torch.equal(y_ref, want32.to(dtype))
        scale = float(want32.abs().max())
        if dtype == torch.float32:
            torch.testing.assert_close(y_fast, y_ref, rtol=1e-5, atol=1e-6 * scale)
        else:  # the two float32 results may round to neighbouring bf16 values
            torch.testing.assert_close(y_fast.float(), y_ref.float(), rtol=2 ** -7, atol=1e-6 * scale)


def test_anda_linear_empty_load_cache_and_repr():
    src, _ = _linear_pair(576, 64, 128, True, torch.float32, 6, 0)
    dst = AndaLinear.empty(576, 64, 128, 6, asymmetric=True, bias=True)
    x = random_acts((4, 576), 1)
    assert torch.equal(dst(x), torch.zeros(4, 64))  # empty module: zero scales, zero bias
    dst.load_state_dict(src.state_dict())  # must invalidate the cached dequantized weight
    assert torch.equal(dst(x), src(x))
    assert sorted(src.state_dict()) == ["bias", "weight_packed", "weight_scale", "weight_zero_point"]
    dst.mantissa_bits = None  # unquantized activations (W4A16 reference point)
    w = ops.dequantize_int4(src.weight_packed, src.weight_scale, src.weight_zero_point, 128, 576)
    assert torch.equal(dst(x), F.linear(x, w) + src.bias)
    with pytest.raises(ConfigError):
        dst.mantissa_bits = 0
    r = repr(src)
    assert "in_features=576" in r and "out_features=64" in r and "mantissa_bits=6" in r and "group_size=128" in r
    with pytest.raises(ConfigError, match="w_scales"):
        AndaLinear.from_int4(src.weight_packed, src.weight_scale[:, :2], None, None, 576, 128, 6)
    with pytest.raises(ConfigError, match="expects input"):
        src(torch.ones(2, 575))
    bias = src.bias.clone()
    half = src.to(torch.bfloat16)  # _apply drops the cache; bias follows the model dtype, scales do not
    assert half._w_cache is None and half.bias.dtype == torch.bfloat16 and half.weight_scale.dtype == torch.float32
    assert torch.equal(half.weight_scale, dst.weight_scale)
    xb = x.bfloat16()
    want = F.linear(anda.quantize(xb.float(), 6), w) + bias.bfloat16().float()
    assert torch.equal(half(xb), want.bfloat16())
