"""Compact INT4 storage: float16 scales and codes trimmed to the real K, bit-exact after loading."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import tiny_calibration, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

import andactl
from andactl.context import PassContext
from andactl.formats.artifact import save_artifact
from andactl.formats.int4 import fp16_scale_up, quantize_weight_rtn
from andactl.formats.int4_storage import compact, expand, trimmed_bytes
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter


def test_fp16_scale_up_is_the_smallest_fp16_at_or_above():
    s = torch.cat([torch.rand(2000) * 10.0 ** torch.randint(-9, 4, (2000,)).float(),
                   torch.tensor([0.2, 1.0, 65504.0, 65519.0, 7e4, 3e-9])])
    up = fp16_scale_up(s)
    fits = s <= 65504.0
    assert torch.equal(up[~fits], s[~fits])  # beyond float16: unchanged (stored as float32)
    u, v = up[fits], s[fits]
    assert bool((u >= v).all()) and torch.equal(u.half().float(), u)
    below = (u.half().view(torch.int16) - 1).view(torch.float16).float()
    assert bool((below < v).all())  # nothing smaller in float16 is >= the input


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("k,group", [(75, 64), (96, 64), (576, 128), (128, 128)])
def test_compact_expand_bit_exact(symmetric, k, group):
    torch.manual_seed(k)
    q = quantize_weight_rtn(torch.randn(7, k) * 0.05, group, symmetric)
    codes, scales, zeros = q.packed()
    name = "m"
    state = {f"{name}.weight_packed": codes, f"{name}.weight_scale": scales}
    if zeros is not None:
        state[f"{name}.weight_zero_point"] = zeros
    small = compact(state, {name: (k, group)})
    assert small[f"{name}.weight_packed"].shape == (7, trimmed_bytes(k))
    assert small[f"{name}.weight_scale"].dtype == torch.float16
    assert codes.shape[1] * 2 - k >= 0 and torch.equal(state[f"{name}.weight_packed"], codes)  # input untouched
    back = expand(small[f"{name}.weight_packed"], zeros, k, group)
    assert torch.equal(back, codes)
    assert torch.equal(small[f"{name}.weight_scale"].float(), scales)


def test_compact_keeps_fp32_scales_outside_fp16():
    scale = torch.tensor([[1e6, 0.5]])
    out = compact({"m.weight_scale": scale}, {"m": (128, 64)})
    assert out["m.weight_scale"].dtype == torch.float32 and torch.equal(out["m.weight_scale"], scale)


def _packed(symmetric: bool):
    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=4, seqlen=32)
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64, "symmetric": symmetric},
                             {"pass": "set_anda_bits", "bits": [6, 5, 4, 7]}, {"pass": "pack"}]).run(ctx)
    return ctx.model.eval(), ctx.records


@pytest.mark.parametrize("symmetric", [True, False])
def test_artifact_stores_compact_and_loads_bit_exact(tmp_path, symmetric):
    model, records = _packed(symmetric)
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), {}, records=records)
    stored = load_file(str(out / "model.safetensors"))
    down = "model.layers.0.mlp.down_proj"  # K = 96, group 64: padded to 128 in memory
    assert stored[f"{down}.weight_packed"].shape == (64, 48)
    assert model.get_submodule(down).weight_packed.shape == (64, 64)
    assert all(stored[f"{n}.weight_scale"].dtype == torch.float16 for n in records.packed)
    loaded, _ = andactl.load(out)
    mem = model.state_dict()
    for name, t in loaded.state_dict().items():
        assert t.dtype == mem[name].dtype and torch.equal(t, mem[name]), name
    ids = tiny_inputs()
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    # an artifact written before compact storage (full-width codes, float32 scales) still loads
    old = {k: v for k, v in stored.items()}
    for n in records.packed:
        mod = model.get_submodule(n)
        old[f"{n}.weight_packed"] = mod.weight_packed.clone()
        old[f"{n}.weight_scale"] = mod.weight_scale.clone()
    save_file(old, str(out / "model.safetensors"), metadata={"format": "pt"})
    legacy, _ = andactl.load(out)
    with torch.no_grad():
        assert torch.equal(legacy(ids).logits, model(ids).logits)
    assert json.loads((out / "config.json").read_text())["andactl"]["format_version"] == 2


def _sliced():
    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=4, seqlen=32)
    PassManager.from_recipe([{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}]).run(ctx)
    return ctx.model.eval(), ctx.records


def test_int8_shortcuts_error_bound_and_both_loaders(tmp_path):
    from transformers import AutoModelForCausalLM

    from andactl.formats.byte_accounting import account
    from andactl.formats.storage import is_shortcut

    model, records = _sliced()
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), {}, records=records, storage_dtype="fp32",
                        shortcuts="int8")
    stored = load_file(str(out / "model.safetensors"))
    names = [k for k in model.state_dict() if is_shortcut(k) and model.state_dict()[k] is not None]
    assert len(names) == 4 and not any(n in stored for n in names)
    loaded, _ = andactl.load(out)
    hf = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    for n in names:
        s, codes, scale = model.state_dict()[n], stored[n + "_int8"], stored[n + "_int8_scale"]
        assert codes.dtype == torch.uint8 and codes.shape == s.shape and scale.dtype == torch.float16
        bound = scale.float().repeat_interleave(64, dim=1)[:, : s.shape[1]] / 2
        got = loaded.state_dict()[n]
        assert bool(((got - s).abs() <= bound).all()) and not torch.equal(got, s)
        assert torch.equal(hf.state_dict()[n], got)
    ids = tiny_inputs()
    with torch.no_grad():
        ref, a, b = model(ids).logits, loaded(ids).logits, hf(ids).logits
    assert torch.equal(a, b)
    assert 0 < float((a - ref).abs().max() / ref.abs().max()) < 3e-2  # tiny random model; bound above is the invariant
    acc = account(out)
    assert acc["by_category"]["shortcuts"] == sum(stored[n + s].numel() * stored[n + s].element_size()
                                                  for n in names for s in ("_int8", "_int8_scale"))


def test_bad_shortcut_storage_is_one_line(tmp_path, tiny_hf_dir):
    from click.testing import CliRunner

    from andactl.cli.main import cli

    res = CliRunner().invoke(cli, ["slice", str(tiny_hf_dir), "--ratio", "0.25", "--shortcuts", "int3", "--cal-samples", "4", "--cal-seqlen", "64",
                                   "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown shortcut storage 'int3'; choose float or int8" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bits", [4, 8])
def test_table_clip_never_worse_per_group(bits):
    from andactl.formats import table_quant as tq

    g = torch.Generator().manual_seed(3)
    w = torch.randn(300, 80, generator=g) * torch.rand(300, 1, generator=g)
    w[5, 7] = 9.0  # an outlier: clipping pays off in its group
    errs = {}
    for clip in (False, True):
        packed, scale = tq.quantize(w, bits, 32, clip=clip)
        w_hat = tq.dequantize(packed, scale, bits, 80, 32)
        errs[clip] = ((w_hat - w) ** 2).view(300, -1).split([32, 32, 16], dim=1)
        errs[clip] = torch.stack([e.sum(1) for e in errs[clip]], 1)
        inside = w.abs() <= tq.QMAX[bits] * scale.float().repeat_interleave(32, 1)[:, :80]
        bound = scale.float().repeat_interleave(32, 1)[:, :80] / 2
        assert bool(((w_hat - w).abs() <= bound)[inside].all())
        assert clip or bool(inside.all())
    assert bool((errs[True] <= errs[False]).all())
    assert bits == 8 or float(errs[True].sum()) < float(errs[False].sum())  # INT4: clipping pays off
