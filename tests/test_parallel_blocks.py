"""Parallel-block architectures (phi: one LayerNorm feeding attention and MLP, partial rotary)
through fusion, rotation, slicing, rebuild and artifact save/reload, on a random tiny phi."""
from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import fresh_model, reference_logits, tiny_calibration, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.context import PassContext
from andactl.formats.artifact import save_artifact
from andactl.models.adapters import PhiAdapter, get_adapter
from andactl.models.artifact_loader import load_artifact
from andactl.formats.reader import apply_records
from andactl.passes.fuse_norms import FuseNorms
from andactl.passes.rotate import Rotate, RotateConfig
from andactl.passes.slice import Slice
from andactl.models.slicegpt_layer import simulate_slicing
from andactl.models.slicegpt_parallel_layer import ParallelSliceGPTLayer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _ctx(model) -> PassContext:
    return PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=tiny_calibration())


def _logits(model, ids):
    return model(ids).logits


def test_phi_adapter_recomposes_the_parallel_layer():
    model, _ = tiny_model("phi", torch.float64)
    ad = get_adapter(model)
    assert type(ad) is PhiAdapter and ad.parallel_blocks and ad.norm_kind == "layernorm"
    assert model.model.layers[0].self_attn.rotary_ndims == 8  # partial rotary: half of head_dim 16
    seen = {}
    layer = ad.layers()[0]
    h1 = layer.register_forward_pre_hook(lambda m, a, k: seen.update(x=a[0] if a else k["hidden_states"], kw=dict(k)),
                                         with_kwargs=True)
    h2 = layer.register_forward_hook(lambda m, a, o: seen.setdefault("y", o[0] if isinstance(o, tuple) else o))
    model(tiny_inputs())
    h1.remove(), h2.remove()
    kw = {k: v for k, v in seen["kw"].items() if k != "hidden_states"}
    n = ad.attn_norm(layer)(seen["x"])
    y = seen["x"] + ad.run_attention(layer, n, kw) + ad.run_mlp(layer, n)
    assert ad.mlp_norm(layer) is ad.attn_norm(layer)
    assert (y - seen["y"]).abs().max().item() < 1e-12
    assert set(ad.linear_names().values()) == {"qkv", "o", "u", "d"} and len(ad.linear_names()) == 12


def test_phi_fusion_and_rotation_keep_logits():
    model, _ = tiny_model("phi", torch.float64)
    ids = tiny_inputs()
    ref = reference_logits(model, ids)
    ctx = _ctx(model)
    result = FuseNorms().run(ctx)
    assert (_logits(model, ids) - ref).abs().max().item() < 1e-6
    assert result["centred"] and result["biased"] == []  # phi's head already has a bias
    assert abs(get_adapter(model).embeddings()[0].weight.mean(dim=1)).max().item() < 1e-12
    Rotate(RotateConfig(ratio=0.0)).run(ctx)
    assert (_logits(model, ids) - ref).abs().max().item() < 1e-6
    eye = torch.eye(64, dtype=torch.float64)
    for layer in get_adapter(model).layers():
        assert isinstance(layer, ParallelSliceGPTLayer) and layer.shortcuts == ("shortcut",)
        assert (layer.shortcut.T @ layer.shortcut - eye).abs().max().item() < 1e-8
        assert "mlp_shortcut" not in dict(layer.named_buffers())


def _sliced_phi():
    model, _ = tiny_model("phi", torch.float64)
    ctx = _ctx(model)
    FuseNorms().run(ctx)
    Rotate(RotateConfig(ratio=0.25)).run(ctx)
    rotated = copy.deepcopy(model)
    Slice().run(ctx)
    return rotated, model, ctx


def test_phi_slicing_shapes_and_equivalence_to_masked_rotation():
    rotated, sliced, ctx = _sliced_phi()
    record = ctx.structure[-1]
    ad = get_adapter(sliced)
    assert [d["shortcut"] for d in record["layers"]] == [[48, 48], [48, 64]]
    for layer, dims in zip(ad.layers(), record["layers"]):
        assert all(lin.weight.shape[1] == dims["attn_in"] for lin in ad.attn_inputs(layer) + ad.mlp_inputs(layer))
        assert ad.attn_output(layer).weight.shape[0] == ad.mlp_output(layer).weight.shape[0] == dims["out"]
        assert ad.attn_output(layer).bias.shape[0] == dims["out"]
        assert list(layer.shortcut.shape) == dims["shortcut"]
    assert ad.embeddings()[0].weight.shape == (128, 48) and ad.head().weight.shape == (128, 64)
    ids = tiny_inputs()
    dims = [(d["attn_in"], d["mlp_in"], d["out"]) for d in record["layers"]]
    with simulate_slicing(get_adapter(rotated).layers(), dims):
        masked = _logits(rotated, ids)
    assert (_logits(sliced, ids) - masked).abs().max().item() < 1e-10
    assert ctx.report["slicing"]["shortcut_parameters"] == 48 * 48 + 48 * 64
    prompt = tiny_inputs(1, 5)
    cached = sliced.generate(prompt, max_new_tokens=5, do_sample=False, use_cache=True)
    assert torch.equal(cached, sliced.generate(prompt, max_new_tokens=5, do_sample=False, use_cache=False))


def test_phi_rebuild_and_artifact_reload_give_equal_logits(tmp_path):
    _, sliced, ctx = _sliced_phi()
    fresh = fresh_model(copy.deepcopy(sliced.config), torch.float64)
    apply_records(fresh, ctx.records)  # what the artifact reader does (there on the meta device)
    fresh.load_state_dict(sliced.state_dict(), strict=True)
    ids = tiny_inputs()
    assert torch.equal(_logits(fresh, ids), _logits(sliced, ids))
    out = save_artifact(tmp_path / "phi", sliced, char_tokenizer(), {}, records=ctx.records)
    loaded, _, meta = load_artifact(out, torch.float64)
    assert torch.equal(_logits(loaded, ids), _logits(sliced, ids))
    assert loaded.state_dict()["model.layers.1.shortcut"].shape == (48, 64)
