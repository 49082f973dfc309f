"""quantize passes wired together: fake-quant == packed model == reloaded artifact; search trace
honours the tolerance; CLI end to end on a tiny model; bad input."""
from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import invoke_cli
from tiny_models import tiny_calibration, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.context import PassContext
from andactl.formats.artifact import save_artifact
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter
from andactl.models.artifact_loader import load_artifact
from andactl.passes.anda_fakequant import LossEvaluator, anda_activations, tuple_bits


def _ctx(family="llama", seed=0):
    model, _ = tiny_model(family, seed=seed)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=64)
    return ctx


@pytest.mark.parametrize("family,asym", [("llama", False), ("opt", True)])
def test_packed_equals_fake_quant_and_round_trips(tmp_path, family, asym):
    ctx = _ctx(family)
    bits = [6, 5, 4, 7]
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64, "symmetric": not asym},
                             {"pass": "set_anda_bits", "bits": bits}]).run(ctx)
    ids = tiny_inputs()
    with torch.no_grad(), anda_activations(ctx.model, ctx.adapter, tuple_bits(bits)):
        fake = ctx.model(ids).logits
    PassManager.from_recipe([{"pass": "pack"}]).run(ctx)
    with torch.no_grad():
        packed = ctx.model(ids).logits
    assert torch.allclose(packed, fake, rtol=1e-5, atol=1e-5)
    out = save_artifact(tmp_path / "p", ctx.model, ctx.tokenizer, {"provides": sorted(ctx.provided)}, records=ctx.records)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "andactl"
    group = next(iter(cfg["quantization_config"]["config_groups"].values()))
    assert group["weights"]["num_bits"] == 4 and group["input_activations"]["group_size"] == 64
    reloaded, _, _ = load_artifact(out)
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, packed)
    ad = get_adapter(reloaded)
    assert ad.mlp_output(ad.layers()[0]).mantissa_bits == 7 and ad.attn_output(ad.layers()[1]).mantissa_bits == 5


def test_search_accepts_only_within_tolerance():
    ctx = _ctx()
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn"},
                             {"pass": "anda_search", "tolerance": 0.002, "max_evals": 8, "budget": "bops", "loss": "ppl"}]).run(ctx)
    trace = ctx.report["search"]["trace"]
    evaluated = [t for t in trace if not t["skipped"]]
    assert 1 <= len(evaluated) <= 8 == ctx.report["search"]["max_evals"]
    check = LossEvaluator(ctx)
    for entry in evaluated:
        loss = check(tuple_bits(entry["tuple"]))
        assert loss == pytest.approx(entry["loss"], abs=1e-9)
        assert entry["accepted"] == (loss <= 0.002)
    assert ctx.anda_bits == tuple_bits(ctx.report["search"]["tuple"])


def test_cli_slice_quantize_eval_inspect(tiny_hf_dir, data_dir, tmp_path):
    cal = ["--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "4", "--cal-seqlen", "128", "--data-dir", data_dir]
    res = invoke_cli("slice", tiny_hf_dir, "--ratio", "0.25", "-o", tmp_path / "s", *cal)
    assert res.exit_code == 0, res.stderr
    res = invoke_cli("quantize", tmp_path / "s", "--max-evals", "4", "--weight-method", "gptq", "--group-size", "64",
                     "-o", tmp_path / "q", "--format", "json", *cal)
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert [p["pass"] for p in summary["passes"]] == ["quantize_weights", "anda_search", "pack", "quantize_tables"]
    assert summary["search"]["evaluations"] <= 4
    res = invoke_cli("eval", tmp_path / "s", tmp_path / "q", "--tasks", "wikitext2", "--seqlen", "64", "--limit", "2",
                     "--data-dir", data_dir, "--format", "json", "--backend", "reference")
    assert res.exit_code == 0, res.stderr
    runs = json.loads(res.stdout)["models"]
    assert [r["model"] for r in runs] == [str(tmp_path / "s"), str(tmp_path / "q")]
    assert all(r["results"]["wikitext2"]["ppl"] > 1 for r in runs)
    info = json.loads(invoke_cli("inspect", tmp_path / "q", "--format", "json").stdout)
    assert info["structure"][-2:] == ["pack", "quantize_tables"]
    assert info["passes_applied"] == ["fuse_norms", "rotate", "slice", "quantize_weights", "anda_search", "pack",
                                      "quantize_tables"]  # every step's passes, not only structural records
    assert len(info["quantized_modules"]) == 14 and info["search"]["tuple"] == summary["search"]["tuple"]
    res = invoke_cli("quantize", tmp_path / "q", "-o", tmp_path / "q2")
    assert res.exit_code == 2 and "already quantized" in res.stderr
    recipe = tmp_path / "again.yaml"  # the same through a recipe: refused before loading, not an internal failure
    recipe.write_text("- {pass: quantize_weights, method: rtn}\n- {pass: keep_activations}\n- {pass: pack}\n")
    res = invoke_cli("run", recipe, "--model", tmp_path / "q", "-o", tmp_path / "q2")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "pass 'quantize_weights' (step 1) cannot run after int4_weights, packed, which" in res.stderr
    assert not (tmp_path / "q2").exists()
    for src, clash in (("s", "rotated"), ("q", "rotated, int4_weights, packed")):  # slicing twice: refused, not crashed
        res = invoke_cli("slice", tmp_path / src, "--ratio", "0.1", "-o", tmp_path / "again", *cal)
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert f"pass 'rotate' (step 2) cannot run after {clash}," in res.stderr
        assert not (tmp_path / "again").exists()
    from andactl.dry_run.shape import model_shape

    sliced, packed = model_shape(str(tmp_path / "s")), model_shape(str(tmp_path / "q"))  # packed: sizes kept
    for field in ("parameters", "hidden", "layers", "vocab", "widest", "largest_k", "largest_linear", "largest_group", "kv_width"):
        assert getattr(packed, field) == getattr(sliced, field), field


@pytest.mark.parametrize("args,msg", [
    (["--tolerance", "0"], "--tolerance must be in (0, 1)"),
    (["--tolerance", "1.5"], "--tolerance must be in (0, 1)"),
    (["--budget", "watts"], "Invalid value for '--budget'"),
    (["--group-size", "100"], "positive multiple of 64"),
    (["--cal-samples", "1", "--cal-seqlen", "64"], "calibration too small for GPTQ"),
])
def test_quantize_bad_input(tiny_hf_dir, tmp_path, args, msg):
    res = invoke_cli("quantize", tiny_hf_dir, "-o", tmp_path / "q", *args)
    assert res.exit_code == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and msg in lines[0]
    assert not (tmp_path / "q").exists()
