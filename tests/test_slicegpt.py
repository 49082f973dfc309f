"""SliceGPT passes on random tiny llama / qwen2 / opt models: invariances, slicing, rebuild."""
from __future__ import annotations

import copy

import pytest
import torch

from andactl.context import PassContext
from andactl.errors import ConfigError
from andactl.formats.reader import apply_records
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter
from andactl.passbase import get_pass, parse_config
from andactl.passes.fuse_norms import FuseNorms
from andactl.passes.pca import GramAccumulator, add_gram_, pca_basis, sliced_dim
from andactl.passes.rotate import Rotate, RotateConfig
from andactl.passes.slice import Slice
from andactl.passes.slicegpt_layer import SliceGPTLayer, count_parameters, simulate_slicing
from andactl.models.tied_head import TiedHead
from tiny_models import FAMILIES, fresh_model, reference_logits, tiny_calibration, tiny_inputs, tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TIED = ("llama", "qwen3", "smollm3", "opt")  # tiny families with tied embeddings


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def make_ctx(model) -> PassContext:
    return PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=tiny_calibration())


def logits(model, ids) -> torch.Tensor:
    return model(ids).logits


def sliced_pipeline(family: str, ratio: float = 0.25, dtype=torch.float64):
    """(dense reference logits, rotated-unsliced copy, sliced model, ctx)."""
    model, _ = tiny_model(family, dtype)
    ids = tiny_inputs()
    ref = reference_logits(model, ids)
    ctx = make_ctx(model)
    FuseNorms().run(ctx)
    Rotate(RotateConfig(ratio=ratio)).run(ctx)
    rotated = copy.deepcopy(model)
    Slice().run(ctx)
    return ref, rotated, model, ctx


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_fuse_norms_keeps_logits(family, dtype, tol):
    model, _ = tiny_model(family, dtype)
    ids = tiny_inputs()
    ref = reference_logits(model, ids)
    ctx = make_ctx(model)
    result = FuseNorms().run(ctx)
    assert (logits(model, ids) - ref).abs().max().item() < tol
    adapter = get_adapter(model)
    assert adapter.head().weight is not adapter.embeddings()[0].weight
    assert model.config.tie_word_embeddings is False
    model.tie_weights()  # a later tie_weights() call must not re-tie the folded head
    assert adapter.head().weight is not adapter.embeddings()[0].weight
    assert ctx.structure[-1]["pass"] == "fuse_norms" and ctx.structure[-1]["hidden_size"] == 64
    if family == "opt":  # LayerNorm shift folded into the bias-less head
        assert result["biased"] == ["lm_head"] and result["centred"]
        assert abs(adapter.embeddings()[0].weight.mean(dim=1)).max().item() < 1e-6
    else:
        assert result["biased"] == [] and not result["centred"]


@pytest.mark.parametrize("family", FAMILIES)
def test_rotate_ratio0_keeps_logits_and_shortcuts_are_orthogonal(family):
    model, _ = tiny_model(family, torch.float64)
    ids = tiny_inputs()
    ref = reference_logits(model, ids)
    ctx = make_ctx(model)
    FuseNorms().run(ctx)
    Rotate(RotateConfig(ratio=0.0)).run(ctx)
    assert (logits(model, ids) - ref).abs().max().item() < 1e-6
    eye = torch.eye(64, dtype=torch.float64)
    for layer in get_adapter(model).layers():
        assert isinstance(layer, SliceGPTLayer)
        for S in (layer.attn_shortcut, layer.mlp_shortcut):
            assert S.shape == (64, 64) and S.dtype == torch.float64
            assert (S.T @ S - eye).abs().max().item() < 1e-8
    assert (get_adapter(model).embeddings()[0].weight - tiny_model(family, torch.float64)[0].get_input_embeddings().weight).abs().max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_slice_shapes_and_equivalence_to_masked_rotation(family):
    ref, rotated, sliced, ctx = sliced_pipeline(family, 0.25)
    record = ctx.structure[-1]
    assert record["pass"] == "slice" and record["embedding_dim"] == 48 and record["head_in"] == 64
    adapter = get_adapter(sliced)
    assert all(e.weight.shape[1] == 48 for e in adapter.embeddings())
    for layer, dims in zip(adapter.layers(), record["layers"]):
        assert all(lin.weight.shape[1] == dims["attn_in"] for lin in adapter.attn_inputs(layer))
        assert adapter.attn_output(layer).weight.shape[0] == dims["mlp_in"]
        assert all(lin.weight.shape[1] == dims["mlp_in"] for lin in adapter.mlp_inputs(layer))
        assert adapter.mlp_output(layer).weight.shape[0] == dims["out"]
        assert list(layer.attn_shortcut.shape) == dims["attn_shortcut"]
        assert list(layer.mlp_shortcut.shape) == dims["mlp_shortcut"]
    assert [d["out"] for d in record["layers"]] == [48, 64]  # head not sliced by default
    head = adapter.head()
    assert (head.out_features, head.in_features) == (128, 64)
    # a tied source keeps one table for head and embedding (LayerNorm: the rows' means folded in)
    assert isinstance(head, TiedHead) == (family in TIED) == record["tied_head"]
    ids = tiny_inputs()
    out = logits(sliced, ids)
    assert torch.isfinite(out).all()
    dims = [(d["attn_in"], d["mlp_in"], d["out"]) for d in record["layers"]]
    with simulate_slicing(get_adapter(rotated).layers(), dims):
        masked = logits(rotated, ids)
    assert (out - masked).abs().max().item() < 1e-10
    assert (logits(rotated, ids) - ref).abs().max().item() < 1e-6  # unmasked rotation: still exact
    assert (out - ref).abs().max().item() > 1e-3  # slicing really removed something


@pytest.mark.parametrize("family", ["llama", "opt"])
def test_pca_sees_sliced_upstream(family):
    """In the rotated basis, the calibration Gram matrix of layer 1's mid signal is diagonal only
    when the upstream model is sliced: proof that PCA ran on the sliced model's signals."""
    _, rotated, _, ctx = sliced_pipeline(family, 0.25)
    layers = get_adapter(rotated).layers()
    cal = ctx.calibration()

    def gram_offdiag(dims):
        acc = GramAccumulator(64)
        hook = layers[1].post_attention_layernorm if family != "opt" else layers[1].final_layer_norm
        handle = hook.register_forward_pre_hook(lambda m, args: acc.add(args[0]))
        try:
            with simulate_slicing(layers, dims):
                for batch in cal.batches():
                    rotated(batch["input_ids"])
        finally:
            handle.remove()
        off = acc.H - torch.diag(acc.H.diagonal())
        return off.abs().max().item() / acc.H.diagonal().max().item()

    assert gram_offdiag([(48, 48, 48), (48, 64, 64)]) < 1e-8
    assert gram_offdiag([(64, 64, 64), (64, 64, 64)]) > 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_records_rebuild_sliced_model(family):
    _, _, sliced, ctx = sliced_pipeline(family, 0.25)
    assert [r["pass"] for r in ctx.structure] == ["fuse_norms", "rotate", "slice"]
    fresh = fresh_model(copy.deepcopy(sliced.config), torch.float64)
    apply_records(fresh, ctx.records)  # what the artifact reader does (there on the meta device)
    fresh.load_state_dict(sliced.state_dict(), strict=True)
    ids = tiny_inputs()
    assert torch.equal(logits(fresh, ids), logits(sliced, ids))
    prefix = "model.decoder.layers" if family == "opt" else "model.layers"
    state = sliced.state_dict()
    assert state[f"{prefix}.0.attn_shortcut"].shape == (48, 48)
    assert state[f"{prefix}.1.mlp_shortcut"].shape == (48, 64)
    q = "qkv_proj" if family == "phi3" else "q_proj"
    assert f"{prefix}.1.self_attn.{q}.weight" in state  # HF names kept inside the wrapper
    assert ctx.records.slicing.layers[1].mlp_shortcut == (48, 64)


def test_records_rebuild_rotated_unsliced_model():
    model, _ = tiny_model("qwen2", torch.float64)
    ctx = make_ctx(model)
    FuseNorms().run(ctx)
    Rotate(RotateConfig()).run(ctx)
    fresh = fresh_model(copy.deepcopy(model.config), torch.float64)
    apply_records(fresh, ctx.records)
    fresh.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(logits(fresh, tiny_inputs()), logits(model, tiny_inputs()))


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_with_kv_cache_after_slicing(family):
    _, _, sliced, _ = sliced_pipeline(family, 0.25)
    prompt = tiny_inputs(1, 5)
    with_cache = sliced.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=True)
    without = sliced.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False)
    assert with_cache.shape == (1, 11) and torch.equal(with_cache, without)


def test_rotation_only_generates_like_the_original():
    model, _ = tiny_model("llama", torch.float64)
    prompt = tiny_inputs(1, 5)
    expected = model.generate(prompt, max_new_tokens=6, do_sample=False)
    ctx = make_ctx(model)
    FuseNorms().run(ctx)
    Rotate(RotateConfig()).run(ctx)
    assert torch.equal(model.generate(prompt, max_new_tokens=6, do_sample=False), expected)


def test_parameter_count_includes_shortcuts():
    _, _, sliced, ctx = sliced_pipeline("qwen2", 0.25)
    plain = sum(p.numel() for p in sliced.parameters())
    shortcuts = 48 * 48 + 48 * 48 + 48 * 48 + 48 * 64
    assert count_parameters(sliced) == plain + shortcuts
    assert ctx.report["slicing"]["parameters_after"] == plain + shortcuts
    assert ctx.report["slicing"]["shortcut_parameters"] == shortcuts


def test_manager_pipeline_reports_true_counts():
    model, _ = tiny_model("opt", torch.float32)
    ctx = make_ctx(model)
    manager = PassManager.from_recipe([{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}])
    records = manager.run(ctx)
    result = records[-1]["result"]
    assert result["parameters_after"] == count_parameters(model)
    assert result["parameters_original"] == 75328  # the tied tiny OPT before fusion
    assert result["shortcut_parameters"] == 3 * 48 * 48 + 48 * 64
    assert ctx.provided >= {"fused_norms", "rotated", "sliced"}
    assert manager.resolved_recipe()[1] == {"pass": "rotate", "ratio": 0.25, "round_to": 8, "slice_head": False,
                                            "basis": "pca"}


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_bad_ratio_is_a_config_error(ratio):
    with pytest.raises(ConfigError, match="ratio"):
        parse_config(RotateConfig, {"ratio": ratio}, "rotate")


def test_too_few_kept_dims_is_a_config_error():
    model, _ = tiny_model("llama")
    ctx = make_ctx(model)
    FuseNorms().run(ctx)
    with pytest.raises(ConfigError, match="at least 8 must remain"):
        Rotate(RotateConfig(ratio=0.9)).run(ctx)  # floor(6.4) = 6 -> 0 after rounding to 8
    assert not any(isinstance(layer, SliceGPTLayer) for layer in get_adapter(model).layers())
    assert sliced_dim(576, 0.25, 8) == 432 and sliced_dim(64, 0.25, 8) == 48 and sliced_dim(60, 0.0, 8) == 60
    assert sliced_dim(64, 0.3, 8) == 40


@pytest.mark.parametrize("steps,missing", [
    ([{"pass": "rotate"}], "fused_norms"),
    ([{"pass": "fuse_norms"}, {"pass": "slice"}], "rotated"),
])
def test_manager_refuses_broken_order(steps, missing):
    with pytest.raises(ConfigError, match=missing):
        PassManager.from_recipe(steps).check(set())


@pytest.mark.parametrize("dim,rows", [(64, 300), (576, 2000), (96, 37), (8, 5), (600, 700)])
def test_gram_sums_stay_exactly_symmetric(dim, rows):
    """add_gram_ gives the mean of BLAS's sum and its transpose, bit for bit (so a sum BLAS already
    made symmetric is unchanged), and keeps it exactly symmetric over many additions; the sum is
    rowsᵀ rows to 1e-12 relative. (64, 300) is a shape whose plain addmm came out asymmetric on
    AMD Zen 4; 576 and 600 span several blocks of SYMMETRIZE_BLOCK_ROWS, 600 with a partial one.)
    An asymmetric sum with nothing added becomes the mean of itself and its transpose, bit for bit."""
    gen = torch.Generator().manual_seed(dim)
    acc, total = torch.zeros(dim, dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64)
    for _ in range(3):
        x = torch.randn(rows, dim, generator=gen, dtype=torch.float64)
        plain = acc.clone().addmm_(x.T, x)
        assert torch.equal(add_gram_(acc, x), (plain + plain.T) / 2)
        assert torch.equal(acc, acc.T)
        total += x.T @ x
    assert (acc - total).abs().max() <= 1e-12 * total.abs().max()
    skew = torch.randn(dim, dim, generator=gen, dtype=torch.float64)  # every block's averaging, whatever BLAS does
    assert torch.equal(add_gram_(skew.clone(), torch.zeros(0, dim, dtype=torch.float64)), (skew + skew.T) / 2)


def test_padding_tokens_do_not_change_gram():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[1, 3:] = 0
    with_pad = GramAccumulator(8)
    with_pad.add(x, mask)
    garbage = x.clone()
    garbage[1, 3:] = 1e6
    with_garbage = GramAccumulator(8)
    with_garbage.add(garbage, mask)
    only_real = GramAccumulator(8)
    only_real.add(x[0])
    only_real.add(x[1, :3])
    assert torch.equal(with_pad.H, with_garbage.H)
    assert torch.allclose(with_pad.H, only_real.H, rtol=0, atol=1e-12)
    assert with_pad.tokens == 8
    vals, Q = pca_basis(with_pad.H)
    assert torch.all(vals[:-1] >= vals[1:])
    assert (Q.T @ with_pad.H @ Q - torch.diag(vals - 0.01 * with_pad.H.diagonal().mean())).abs().max() < 1e-10
