"""rotate's gradient-aware basis (``basis: fisher``): the subspace search, the residual-stream
Fisher matrices it reads, and the sliced model it gives."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from cli_helpers import assert_error_line, invoke_cli
from tiny_models import reference_logits, tiny_calibration, tiny_inputs, tiny_model

from andactl.context import PassContext
from andactl.models.adapters import get_adapter
from andactl.models.slicegpt_layer import simulate_slicing
from andactl.passes.fuse_norms import FuseNorms
from andactl.passes.pca import fisher_basis, fisher_estimate, pca_basis
from andactl.passes.residual_fisher import collect_residual_fisher, label_generator, residual_points
from andactl.passes.rotate import Rotate, RotateConfig
from andactl.passes.slice import Slice

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _projector(Q: torch.Tensor) -> torch.Tensor:
    return Q @ Q.T


def test_fisher_basis_drops_the_direction_the_loss_needs_least():
    """PCA drops e4 (least energy), but the loss gradient lies along v = (e4 + 0.3 e3): the cheapest
    cut is w, the direction of the (e3, e4) plane orthogonal to v, which the search finds from PCA's
    start (estimate 1e-3 x w's energy against 10 (v.e4)^2 x 0.9 for PCA)."""
    H = torch.diag(torch.tensor([10.0, 5.0, 1.0, 0.9], dtype=torch.float64))
    v = torch.tensor([0.0, 0.0, 0.3, 1.0], dtype=torch.float64)
    v = v / v.norm()
    F = 10.0 * torch.outer(v, v) + 1e-3 * torch.eye(4, dtype=torch.float64)
    w = torch.tensor([0.0, 0.0, 1.0, -0.3], dtype=torch.float64)
    w = w / w.norm()
    _, Q_pca = pca_basis(H)
    assert Q_pca[3, 3].abs() > 0.999  # PCA drops e4
    vals, Q, ratio = fisher_basis(H, F, 3)
    eye = torch.eye(4, dtype=torch.float64)
    assert (Q.T @ Q - eye).abs().max() < 1e-12
    assert (Q[:, 3] @ w).abs() > 0.999  # w is the dropped column
    pca_estimate = fisher_estimate(Q_pca[:, 3:], H, F)
    assert ratio == pytest.approx(float(fisher_estimate(Q[:, 3:], H, F) / pca_estimate), rel=1e-6)
    assert ratio < 2e-4
    assert torch.allclose(vals, torch.diagonal(Q.T @ H @ Q))
    assert (vals[:3].diff() <= 0).all()  # kept columns ordered by energy


def test_fisher_basis_with_isotropic_gradient_is_pca():
    """With F = c I the estimate is c times PCA's dropped energy: PCA's subspace
    is the optimum and the search must not leave it; d = D returns PCA's basis itself."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 12, generator=gen, dtype=torch.float64) * torch.linspace(3, 0.1, 12, dtype=torch.float64)
    H = X.T @ X
    _, Q_pca = pca_basis(H)
    _, Q, ratio = fisher_basis(H, 2.5 * torch.eye(12, dtype=torch.float64), 8)
    assert ratio == pytest.approx(1.0, abs=1e-9)
    assert (_projector(Q[:, 8:]) - _projector(Q_pca[:, 8:])).abs().max() < 1e-6
    vals, Q_full, ratio_full = fisher_basis(H, torch.eye(12, dtype=torch.float64), 12)
    assert ratio_full == 1.0 and torch.equal(Q_full, Q_pca)


def _ctx(model, seed: int = 3) -> PassContext:
    return PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=tiny_calibration(),
                       seed=seed)


def test_residual_fisher_matches_autograd_at_the_embedding():
    """Point 0's F equals sum_t g_t g_t^T with g from autograd through inputs_embeds (llama feeds its
    embeddings to layer 0 unscaled), for the same labels drawn from the model; every point's F is
    symmetric positive semi-definite; the model's parameters get no gradient."""
    model, _ = tiny_model("llama", torch.float64)
    ctx = _ctx(model)
    FuseNorms().run(ctx)
    adapter = get_adapter(model)
    fisher = collect_residual_fisher(model, adapter, ctx.calibration(), seed=3)
    assert len(fisher) == len(residual_points(adapter)) == 2 * len(adapter.layers()) + 1
    assert all(p.grad is None for p in model.parameters())
    for F in fisher:
        assert torch.equal(F, F.T) and torch.linalg.eigvalsh(F).min() > -1e-9 * F.diagonal().sum()
    expected, sample = torch.zeros_like(fisher[0]), 0
    for batch in ctx.calibration().batches():
        for row in range(batch["input_ids"].shape[0]):
            gen, sample = label_generator(3, sample), sample + 1
            emb = adapter.embeddings()[0](batch["input_ids"][row : row + 1]).detach().requires_grad_(True)
            logits = model(inputs_embeds=emb, attention_mask=batch["attention_mask"][row : row + 1]).logits.float()
            logits = logits.reshape(-1, logits.shape[-1])
            labels = torch.multinomial(torch.softmax(logits.detach(), -1), 1, generator=gen)[:, 0]
            torch.nn.functional.cross_entropy(logits, labels, reduction="sum").backward()
            g = emb.grad.reshape(-1, emb.shape[-1]).double()
            expected += g.T @ g
    assert torch.allclose(fisher[0], expected, rtol=1e-9, atol=1e-12 * expected.abs().max().item())


@pytest.mark.parametrize("family", ["llama", "opt", "phi3", "phi"])
def test_fisher_rotation_keeps_logits_and_slices_like_the_masked_rotation(family):
    """basis fisher keeps rotate's invariants: at ratio 0 the logits are the source's; sliced, the
    model equals its rotation with the dropped coordinates zeroed; every point's loss estimate is at
    most PCA's, and strictly below it somewhere (the basis really changed)."""
    model, _ = tiny_model(family, torch.float64)
    ids = tiny_inputs()
    ref = reference_logits(model, ids)
    ctx = _ctx(model)
    FuseNorms().run(ctx)
    result = Rotate(RotateConfig(ratio=0.25, basis="fisher")).run(ctx)
    rotated = copy.deepcopy(model)
    with torch.no_grad():
        assert (model(ids).logits - ref).abs().max().item() < 1e-6
    ratios = result["fisher_estimate_vs_pca"]
    assert len(ratios) == (len(get_adapter(model).layers()) * (1 if family == "phi" else 2) + 1)
    assert max(ratios) <= 1.0 and min(ratios) < 0.9
    Slice().run(ctx)
    record = ctx.structure[-1]
    dims = [(d["attn_in"], d.get("mlp_in", d["attn_in"]), d["out"]) for d in record["layers"]]
    with torch.no_grad():
        out = model(ids).logits
        with simulate_slicing(get_adapter(rotated).layers(), dims):
            masked = rotated(ids).logits
    assert (out - masked).abs().max().item() < 1e-10
    assert ctx.report["slicing"]["basis"] == "fisher"


def test_bad_basis_is_a_config_error():
    from andactl.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown basis 'svd'"):
        RotateConfig(ratio=0.25, basis="svd").validate()


def test_cli_fisher_basis_refuses_streaming_and_writes_a_sliced_artifact(tiny_hf_dir, data_dir, tmp_path):
    out = tmp_path / "out"
    common = ["--ratio", "0.25", "--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "4",
              "--cal-seqlen", "64", "--data-dir", data_dir]
    res = invoke_cli("slice", tiny_hf_dir, *common, "--basis", "fisher", "--stream", "-o", out)
    assert_error_line(res, "pass 'rotate' does not support layer-wise streaming")
    assert not out.exists()
    res = invoke_cli("slice", tiny_hf_dir, *common, "--basis", "fisher", "-o", out)
    assert res.exit_code == 0, res.stderr
    rotate = json.loads((out / "report.json").read_text())["passes"][1]
    assert rotate["config"]["basis"] == "fisher" and max(rotate["result"]["fisher_estimate_vs_pca"]) <= 1.0
