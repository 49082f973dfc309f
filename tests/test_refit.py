"""The least-squares refit of ``rotate`` (passes/refit.py) on random tiny models: with nothing
sliced it changes nothing; with slicing it brings the sliced model closer to the dense one; the
ridge is chosen on held-out tokens; parallel blocks are refused before anything changes."""
from __future__ import annotations

import pytest
import torch
from tiny_models import reference_logits, tiny_calibration, tiny_model

from andactl.context import PassContext
from andactl.errors import ConfigError
from andactl.models.adapters import get_adapter
from andactl.passes.fuse_norms import FuseNorms
from andactl.passes.rotate import Rotate, RotateConfig
from andactl.passes.slice import Slice

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _run(family: str, ratio: float, refit: bool, cal):
    model, _ = tiny_model(family, torch.float64)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=cal)
    with torch.no_grad():
        FuseNorms().run(ctx)
        res = Rotate(RotateConfig(ratio=ratio, refit=refit)).run(ctx)
        Slice().run(ctx)
    model.rotate_result = res
    return model


def _kl(ref: torch.Tensor, out: torch.Tensor) -> float:
    p = torch.log_softmax(ref, -1)
    return float((p.exp() * (p - torch.log_softmax(out, -1))).sum(-1).mean())


@pytest.mark.parametrize("family", ["llama", "qwen2", "opt"])
def test_refit_without_slicing_keeps_logits(family):
    cal = tiny_calibration(samples=8, seqlen=32)
    model = _run(family, 0.0, True, cal)
    dense, _ = tiny_model(family, torch.float64)
    ids = cal.batches().__iter__().__next__()["input_ids"]
    with torch.no_grad():
        assert (model(ids).logits - reference_logits(dense, ids)).abs().max().item() < 1e-6


@pytest.mark.parametrize("family", ["llama", "qwen2", "opt"])
def test_refit_brings_the_sliced_model_closer_to_dense(family):
    cal = tiny_calibration(samples=16, seqlen=32)
    ids = torch.cat([b["input_ids"] for b in cal.batches()])
    dense, _ = tiny_model(family, torch.float64)
    ref = reference_logits(dense, ids)
    with torch.no_grad():
        plain = _kl(ref, _run(family, 0.25, False, cal)(ids).logits)
        refit = _kl(ref, _run(family, 0.25, True, cal)(ids).logits)
    assert refit < 0.8 * plain, (plain, refit)


def test_refit_refuses_parallel_blocks():
    model, _ = tiny_model("phi", torch.float64)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=tiny_calibration())
    with torch.no_grad():
        FuseNorms().run(ctx)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(ConfigError, match="refit supports sequential blocks only"):
            Rotate(RotateConfig(ratio=0.25, refit=True)).run(ctx)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)


def test_held_out_split_and_ridge_choice():
    """Every fourth block of 64 positions is held out (seq // 8 for short sequences; padding in
    neither part); a refit that fails on the held-out tokens is rejected (weight kept), one whose
    target is another linear map of its input everywhere is refit to that map."""
    from andactl.passes.refit import RIDGES, OutputFit, _held_out

    mask = torch.ones(2, 600)
    mask[1, 500:] = 0
    train, val = _held_out(mask, torch.Size([2, 600, 8]), "cpu")
    pos = torch.arange(600).repeat(2)
    assert torch.equal(val, ((pos // 64) % 4 == 3) & (mask.reshape(-1) != 0))
    assert torch.equal(train, ((pos // 64) % 4 != 3) & (mask.reshape(-1) != 0))
    _, short = _held_out(None, torch.Size([1, 32, 8]), "cpu")
    assert short.nonzero().reshape(-1).tolist() == [12, 13, 14, 15, 28, 29, 30, 31]
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 5, bias=True).double()
    x = torch.randn(2, 600, 8, dtype=torch.float64)
    other = torch.randn(5, 8, dtype=torch.float64)
    w = lin.weight.clone()
    held = val.reshape(2, 600, 1)
    fit = OutputFit(lin)
    with torch.no_grad():
        y = lin(x)  # the pre-hook captures x
        fit.add(torch.where(held, y, x @ other.T + lin.bias), mask)  # what it learns fails on held-out
    assert fit.apply() is None and torch.equal(lin.weight, w)
    fit = OutputFit(lin)
    with torch.no_grad():
        lin(x)
        fit.add(x @ other.T + lin.bias, mask)  # exactly another map: the smallest ridge wins
    assert fit.apply() == min(RIDGES)
    assert (lin.weight - other).abs().max().item() < 1e-2
