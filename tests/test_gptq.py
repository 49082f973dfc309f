"""GPTQ for one linear and the ``quantize_weights`` pass on tiny random models."""
from __future__ import annotations

import copy

import pytest
import torch

from andactl.context import PassContext
from andactl.data.calibration import CalibrationData
from andactl.errors import ConfigError, DataError, NumericsError
from andactl.formats.int4 import quantize_weight_rtn
from andactl.models.adapters import get_adapter
from andactl.passbase import get_pass, parse_config
from andactl.passes.gptq import HessianAccumulator, gptq_quantize
from andactl.passes.quantize_weights import QuantizeWeights, QuantizeWeightsConfig
from tiny_models import tiny_calibration, tiny_inputs, tiny_model


def _correlated(seed: int, t: int = 2048, k: int = 192, n: int = 48):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(k, k, generator=g) / k**0.5
    x = (torch.randn(t, k, generator=g) @ mix) * (0.2 + 3 * torch.rand(k, generator=g))
    w = torch.randn(n, k, generator=g) * 0.1
    acc = HessianAccumulator(k)
    acc.add(x)
    return x, w, acc.H


def _out_err(x, w, w_hat) -> float:
    return float(((x @ w.T - x @ w_hat.T) ** 2).sum())


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_beats_rtn_on_correlated_inputs(symmetric, act_order):
    ratios = []
    for seed in range(4):
        x, w, H = _correlated(seed)
        rtn = _out_err(x, w, quantize_weight_rtn(w, 64, symmetric).dequantize())
        q, stats = gptq_quantize(w, H, group_size=64, symmetric=symmetric, act_order=act_order, block_size=64)
        gq = _out_err(x, w, q.dequantize())
        assert gq <= rtn
        assert stats["damp"] == 0.01 and stats["dead_columns"] == 0
        ratios.append(gq / rtn)
    assert sum(ratios) / len(ratios) < 0.8  # strictly (and clearly) better on average


def test_act_order_uses_static_groups_of_original_weights():
    x, w, H = _correlated(7, k=200)
    q, _ = gptq_quantize(w, H, group_size=128, act_order=True)
    rtn = quantize_weight_rtn(w, 128)
    assert torch.equal(q.scales, rtn.scales)  # scales from the original weights, original order
    assert q.codes.shape == (48, 256) and torch.equal(q.codes[:, 200:], torch.full((48, 56), 8, dtype=torch.uint8))


@pytest.mark.parametrize("symmetric", [True, False])
def test_diagonal_hessian_gives_rtn_exactly(symmetric):
    """With uncorrelated inputs there is no error to spread: GPTQ reduces to RTN, code for code."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(16, 320, generator=g)
    H = torch.diag(torch.rand(320, generator=g, dtype=torch.float64) + 0.1)
    q, _ = gptq_quantize(w, H, group_size=128, symmetric=symmetric, block_size=96)
    rtn = quantize_weight_rtn(w, 128, symmetric)
    assert torch.equal(q.codes, rtn.codes) and torch.equal(q.scales, rtn.scales)


def test_dead_columns_quantize_to_zero():
    x, w, H = _correlated(1, k=128)
    H[5, :] = 0
    H[:, 5] = 0
    q, stats = gptq_quantize(w, H, group_size=64)
    deq = q.dequantize()
    assert stats["dead_columns"] == 1
    assert torch.isfinite(deq).all() and torch.equal(deq[:, 5], torch.zeros(48))


def test_empty_hessian_is_a_data_error():
    with pytest.raises(DataError, match="no tokens"):
        gptq_quantize(torch.randn(4, 64), torch.zeros(64, 64, dtype=torch.float64), name="layers.0.q_proj")


def test_indefinite_hessian_is_a_numerics_error():
    with pytest.raises(NumericsError, match="not positive definite"):
        gptq_quantize(torch.randn(4, 64), -torch.eye(64, dtype=torch.float64))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_hessian_accumulator_masks_padding_and_averages(dtype, tol):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 10, 16, generator=g, dtype=dtype)
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    acc = HessianAccumulator(16)
    acc.add(x[:2], mask[:2])
    acc.add(x[2:], mask[2:])
    rows = x[mask.bool()].double()
    assert acc.n == 10 + 6 + 2 and acc.H.dtype == torch.float64
    assert torch.allclose(acc.H, 2.0 / rows.shape[0] * rows.T @ rows, atol=tol, rtol=0)
    assert torch.equal(HessianAccumulator(16).H, torch.zeros(16, 16, dtype=torch.float64))


@pytest.mark.parametrize("act_order", [False, True])
def test_handed_over_hessian_gives_the_same_weights_and_is_released(act_order):
    x, w, _ = _correlated(3)
    acc = HessianAccumulator(x.shape[1])
    acc.add(x)
    H_copy = acc.H
    H = acc.take_H()
    assert torch.equal(H, H_copy)  # bit for bit the property's value
    assert acc.n == 0 and acc.H.numel() == 0  # the accumulator handed its sum over
    ref, _ = gptq_quantize(w, H_copy.clone(), group_size=64, act_order=act_order)
    got, _ = gptq_quantize(w, H, group_size=64, act_order=act_order, consume_H=True)
    assert H.numel() == 0  # released inside GPTQ, not copied
    for a, b in ((ref.codes, got.codes), (ref.scales, got.scales)):
        assert torch.equal(a, b)
    kept = H_copy.clone()
    gptq_quantize(w, kept, group_size=64, act_order=act_order)  # without consume_H: H untouched
    assert torch.equal(kept, H_copy)


# --- the pass -----------------------------------------------------------------------------------

def _ctx(model, calibration=None) -> PassContext:
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None)
    ctx._calibration = calibration
    return ctx


def _run(model, method, calibration=None, **cfg):
    ctx = _ctx(model, calibration)
    result = QuantizeWeights(QuantizeWeightsConfig(method=method, **cfg)).run(ctx)
    return ctx, result


@pytest.mark.parametrize("family,per_layer", [("llama", 7), ("opt", 6)])
def test_pass_quantizes_every_anda_linear_and_nothing_else(family, per_layer):
    base, _ = tiny_model(family)
    model = copy.deepcopy(base)
    ctx, result = _run(model, "gptq", tiny_calibration(samples=8, seqlen=32))
    adapter = ctx.adapter
    names = set(adapter.linear_names())
    assert len(names) == 2 * per_layer and set(ctx.int4_weights) == names == set(result["modules"])
    modules = dict(model.named_modules())
    for name, q in ctx.int4_weights.items():
        assert torch.equal(modules[name].weight, q.dequantize())  # fake-quant: exactly the INT4 grid
        assert 0 < result["modules"][name] < 0.5  # GPTQ trades weight error for output error
    base_params = dict(base.named_parameters())
    for name, p in model.named_parameters():
        module_name = name.rsplit(".", 1)[0]
        if module_name in names and name.endswith("weight"):
            assert not torch.equal(p, base_params[name])
        else:  # embeddings, head, norms, biases untouched
            assert torch.equal(p, base_params[name]), name
    assert result["calibration_tokens"] == 8 * 32 and result["method"] == "gptq"


def test_pass_gptq_lowers_logit_error_vs_rtn():
    base, _ = tiny_model("llama", seed=2)
    ids = tiny_inputs(batch=4, seqlen=32, seed=9)
    with torch.no_grad():
        ref = base(ids).logits
    errs = {}
    for method in ("rtn", "gptq"):
        model = copy.deepcopy(base)
        _run(model, method, tiny_calibration(samples=16, seqlen=32, seed=5))
        with torch.no_grad():
            errs[method] = float(((model(ids).logits - ref) ** 2).mean())
    assert errs["gptq"] < 0.9 * errs["rtn"], errs


def test_rtn_pass_needs_no_calibration_and_gptq_masks_padding():
    model, _ = tiny_model("llama")
    ctx, result = _run(copy.deepcopy(model), "rtn", None, group_size=64, symmetric=False)
    assert result["calibration_tokens"] == 0 and len(ctx.int4_weights) == 14
    assert all(q.zeros is not None and q.group_size == 64 for q in ctx.int4_weights.values())
    calib = tiny_calibration(samples=4, seqlen=32)
    calib.attention_mask[:, 20:] = 0
    ctx, result = _run(copy.deepcopy(model), "gptq", calib, act_order=True)
    assert result["calibration_tokens"] == 4 * 20 and result["mean_relative_error"] < 0.2


def test_pass_config_is_validated_and_registered():
    assert get_pass("quantize_weights") is QuantizeWeights
    assert QuantizeWeights.provides == ("int4_weights",) and QuantizeWeights.requires == ()
    for bad in ({"group_size": 100}, {"group_size": 0}, {"method": "awq"}, {"damp": -0.1}):
        with pytest.raises(ConfigError):
            parse_config(QuantizeWeightsConfig, bad, "pass 'quantize_weights'")
    assert parse_config(QuantizeWeightsConfig, {"group_size": -1}, "q").group_size == -1


def test_pass_on_slicegpt_wrapped_layers():
    from andactl.passes.fuse_norms import FuseNorms
    from andactl.passes.rotate import Rotate, RotateConfig
    from andactl.passes.slice import Slice

    model, _ = tiny_model("llama")
    ctx = _ctx(model, tiny_calibration(samples=8, seqlen=32))
    with torch.no_grad():
        FuseNorms().run(ctx)
        Rotate(RotateConfig(ratio=0.25)).run(ctx)
        Slice().run(ctx)
    sliced = copy.deepcopy(model)
    widths = {n: m.weight.shape[1] for n, m in model.named_modules() if n.endswith("q_proj")}
    assert set(widths.values()) == {48}  # 64 * 0.75: the layers really are sliced
    result = QuantizeWeights(QuantizeWeightsConfig(method="gptq")).run(ctx)
    assert len(ctx.int4_weights) == 14 and result["calibration_tokens"] == 8 * 32
    for name, q in ctx.int4_weights.items():
        assert q.in_features == dict(model.named_modules())[name].weight.shape[1]
    rtn_model = copy.deepcopy(sliced)
    _run(rtn_model, "rtn")
    ids = tiny_inputs(batch=4, seqlen=32, seed=11)
    with torch.no_grad():
        ref = sliced(ids).logits
        err_gptq = float((model(ids).logits - ref).pow(2).mean())
        err_rtn = float((rtn_model(ids).logits - ref).pow(2).mean())
    assert err_gptq < err_rtn


def test_stacked_linears_sharing_h_quantize_like_separate_ones():
    """Output rows are independent given H: the pass's stacked q/k/v GPTQ equals one-by-one GPTQ."""
    x, w, H = _correlated(4, k=128, n=48)
    joint, _ = gptq_quantize(w, H, group_size=64)
    for a, b in ((0, 16), (16, 40), (40, 48)):
        alone, _ = gptq_quantize(w[a:b], H, group_size=64)
        part = joint.rows(a, b)
        assert torch.allclose(part.scales, alone.scales, rtol=1e-5, atol=0)
        assert (part.codes != alone.codes).float().mean() < 0.001  # float summation order only
        assert torch.allclose(part.dequantize(), alone.dequantize(), atol=float(alone.scales.max()) + 1e-6)
