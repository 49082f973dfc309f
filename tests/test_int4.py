"""Group-wise INT4 RTN: error bounds, exact packed layout (ops_spec.md), padding, group sizes."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from andactl.errors import ConfigError, NumericsError
from andactl.formats.int4 import Int4Weight, quantize_weight_rtn, resolve_group_size
from andactl.kernels.ops import dequantize_int4


def _ref_pack(codes: torch.Tensor) -> torch.Tensor:
    """Test-only packing written from the spec text, byte by byte."""
    n, kw = codes.shape
    out = torch.zeros(n, kw // 2, dtype=torch.uint8)
    for r in range(n):
        for b in range(kw // 2):
            out[r, b] = int(codes[r, 2 * b]) + 16 * int(codes[r, 2 * b + 1])
    return out


def _spec_dequant(w_packed, w_scales, w_zeros, group_size) -> torch.Tensor:
    """dequantized W[n, k] = (q[n, k] - z[n, k // g]) * s[n, k // g], straight from ops_spec.md."""
    n, half = w_packed.shape
    out = torch.empty(n, 2 * half)
    for r in range(n):
        for k in range(2 * half):
            byte = int(w_packed[r, k // 2])
            q = byte & 0xF if k % 2 == 0 else byte >> 4
            z = 8 if w_zeros is None else int(w_zeros[r, k // group_size])
            out[r, k] = (q - z) * float(w_scales[r, k // group_size])
    return out


def _scale_per_col(q: Int4Weight) -> torch.Tensor:
    return q.scales.repeat_interleave(q.group_size, dim=1)[:, : q.in_features]


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("k,group_size", [(256, 128), (200, 128), (64, 64), (100, -1), (320, 192)])
def test_rtn_error_bound_half_scale(symmetric, k, group_size):
    torch.manual_seed(k + group_size)
    w = torch.randn(24, k) * torch.logspace(-3, 1, 24).unsqueeze(1)
    w[3] = w[3].abs() + 0.5  # an all-positive row: asymmetric range widened to include 0
    q = quantize_weight_rtn(w, group_size, symmetric)
    err = (w - q.dequantize()).abs()
    bound = _scale_per_col(q) / 2
    assert bool((err <= bound * (1 + 1e-5)).all())
    # the bound is tight-ish: the worst error is at least a fifth of it somewhere
    assert float((err / bound).max()) > 0.2


def test_symmetric_convention_scale_and_codes():
    w = torch.tensor([[-7.5, 1.5, 0.0, 2.25, 6.0] + [0.0] * 59])
    q = quantize_weight_rtn(w, 64, symmetric=True)
    assert q.zeros is None
    assert q.scales.tolist() == [[1.0]]  # scale = absmax / 7.5, zero point 8
    # -7.5 -> round half to even -8 -> code 0; 1.5 -> 2 -> 10; 2.25 -> 2 -> 10; 6 -> 14
    assert q.codes[0, :5].tolist() == [0, 10, 8, 10, 14]
    assert q.dequantize()[0, :5].tolist() == [-8.0, 2.0, 0.0, 2.0, 6.0]


def test_asymmetric_convention_scale_zero():
    w = torch.tensor([[-1.0, 2.0, 0.5] + [0.0] * 61])
    q = quantize_weight_rtn(w, 64, symmetric=False)
    # 3 / 15 rounded UP to the next float16 value (stored as float16 on disk, exact on load)
    assert q.scales[0, 0].item() == 0.2000732421875
    assert torch.tensor(0.2000732421875).half().float().item() == 0.2000732421875 > 0.2
    assert q.zeros.dtype == torch.uint8 and q.zeros[0, 0].item() == 5  # round(1 / 0.2)
    assert q.codes[0, :3].tolist() == [0, 15, 7]  # -1 -> 0, 2 -> 15, 0.5 / 0.2 -> 2 (+5)


@pytest.mark.parametrize("symmetric", [True, False])
def test_packed_layout_matches_spec_and_round_trips(symmetric):
    torch.manual_seed(1)
    w = torch.randn(5, 150)
    q = quantize_weight_rtn(w, 64, symmetric)
    w_packed, w_scales, w_zeros = q.packed()
    assert w_packed.dtype == torch.uint8 and w_packed.shape == (5, 96)
    assert w_scales.dtype == torch.float32 and w_scales.shape == (5, 3)
    if symmetric:
        assert w_zeros is None
    else:
        assert w_zeros.dtype == torch.uint8 and w_zeros.shape == (5, 3) and int(w_zeros.max()) <= 15
    assert torch.equal(w_packed, _ref_pack(q.codes))
    deq = _spec_dequant(w_packed, w_scales, w_zeros, 64)
    assert torch.equal(deq[:, :150], q.dequantize())
    assert torch.equal(deq[:, 150:], torch.zeros(5, 42))  # padding dequantizes to exactly 0
    kernel_deq = dequantize_int4(w_packed, w_scales, w_zeros, 64, 150)  # the kernels' own reading
    assert torch.equal(kernel_deq, q.dequantize())
    back = Int4Weight.from_packed(w_packed, w_scales, w_zeros, 64, 150)
    assert torch.equal(back.codes, q.codes) and torch.equal(back.dequantize(), q.dequantize())


@pytest.mark.parametrize("symmetric", [True, False])
def test_padding_codes_equal_zero_point(symmetric):
    w = torch.randn(4, 130) + 3.0  # positive weights: asymmetric zero point is 0
    q = quantize_weight_rtn(w, 128, symmetric)
    assert q.codes.shape == (4, 256)
    zp = q.zero_points()[:, -1:].to(torch.uint8).expand(4, 126)
    assert torch.equal(q.codes[:, 130:], zp)


def test_group_size_minus_one_is_one_group_per_row():
    q = quantize_weight_rtn(torch.randn(3, 100), -1)
    assert q.group_size == 128 and q.codes.shape == (3, 128) and q.scales.shape == (3, 1)
    q = quantize_weight_rtn(torch.randn(3, 130), -1)
    assert q.group_size == 192 and q.scales.shape == (3, 1)


@pytest.mark.parametrize("bad", [0, 32, 100, 96, -2, -128, True, 1.5])
def test_bad_group_sizes_raise_config_error(bad):
    with pytest.raises(ConfigError, match="multiple of 64|integer"):
        quantize_weight_rtn(torch.randn(2, 128), bad)
    with pytest.raises(ConfigError):
        resolve_group_size(bad, 128)


@pytest.mark.parametrize("symmetric", [True, False])
def test_all_zero_group_has_scale_one_and_dequantizes_to_zero(symmetric):
    w = torch.zeros(2, 128)
    w[1, 64:] = torch.linspace(-1, 1, 64)
    q = quantize_weight_rtn(w, 64, symmetric)
    assert q.scales[0].tolist() == [1.0, 1.0] and q.scales[1, 0].item() == 1.0
    deq = q.dequantize()
    assert torch.isfinite(deq).all()
    assert torch.equal(deq[0], torch.zeros(128)) and torch.equal(deq[1, :64], torch.zeros(64))


def test_non_finite_weight_raises():
    w = torch.randn(2, 64)
    w[0, 3] = float("nan")
    with pytest.raises(NumericsError):
        quantize_weight_rtn(w, 64)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6), k=st.integers(1, 300), log_scale=st.floats(-6, 4),
    symmetric=st.booleans(), group=st.sampled_from([64, 128, -1]), seed=st.integers(0, 2**16),
)
def test_rtn_bound_property(n, k, log_scale, symmetric, group, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * (10.0**log_scale)
    q = quantize_weight_rtn(w, group, symmetric)
    assert q.codes.dtype == torch.uint8 and int(q.codes.max()) <= 15
    assert q.codes.shape[1] % q.group_size == 0 and q.group_size % 64 == 0
    err = (w - q.dequantize()).abs()
    assert bool((err <= _scale_per_col(q) / 2 * (1 + 1e-5)).all())


def test_rows_splits_a_weight_exactly():
    w = torch.randn(10, 100)
    for symmetric in (True, False):
        q = quantize_weight_rtn(w, 64, symmetric)
        top, bottom = q.rows(0, 4), q.rows(4, 10)
        assert torch.equal(torch.cat([top.dequantize(), bottom.dequantize()]), q.dequantize())
        assert torch.equal(bottom.dequantize(), quantize_weight_rtn(w[4:], 64, symmetric).dequantize())
