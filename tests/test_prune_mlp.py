"""Structured MLP pruning (``prune_mlp`` pass / ``andactl prune``) on tiny random models."""
from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import assert_error_line, invoke_cli
from tiny_models import tiny_calibration, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.context import PassContext
from andactl.models.adapters import get_adapter
from andactl.models.loading import load_model
from andactl.models.slicegpt_layer import count_parameters
from andactl.passes.prune_mlp import PruneMLP, PruneMLPConfig, kept_neurons

WIDTH = 96  # tiny_models' MLP width
ZEROED = 24  # neurons whose output column is zeroed: exactly the quarter a ratio of 0.25 removes


def _save(model, path):
    model.save_pretrained(str(path))
    char_tokenizer().save_pretrained(str(path))
    return path


def _zero_neurons(model, seed: int = 5) -> list[torch.Tensor]:
    """Zeroes ZEROED random output columns per layer (different per layer); returns their indices."""
    adapter, gen, gone = get_adapter(model), torch.Generator().manual_seed(seed), []
    with torch.no_grad():
        for layer in adapter.layers():
            idx = torch.randperm(WIDTH, generator=gen)[:ZEROED]
            adapter.mlp_output(layer).weight[:, idx] = 0.0
            gone.append(idx)
    return gone


def _run(source, out, data_dir, passes):
    from andactl.pipeline import RunOptions, run_recipe
    from andactl.recipe import Recipe

    opts = RunOptions(model=str(source), output=str(out), data_dir=data_dir, quiet=True, storage_dtype="fp32")
    cal = {"dataset": "ptb", "split": "validation", "samples": 4, "seqlen": 64}
    ctx, path, _ = run_recipe(Recipe(passes=passes, calibration=cal), opts)
    return ctx, path


PRUNE = {"pass": "prune_mlp", "ratio": 0.25, "round_to": 8}


@pytest.mark.parametrize("family", ["llama", "qwen3", "phi3", "opt", "phi"])
def test_neurons_that_write_nothing_are_the_ones_removed(family, data_dir, tmp_path):
    """A neuron whose output column is zero scores 0, so pruning exactly those leaves the function
    unchanged: the written artifact's logits equal the source's, for plain, fused (phi3) and biased
    (opt, phi) MLPs; its config names the new width and the dry run counted its parameters exactly."""
    from andactl.dry_run.estimate import estimate
    from andactl.pipeline import RunOptions
    from andactl.recipe import Recipe

    model, _ = tiny_model(family)
    if family == "opt":  # ReLU: a neuron dead on the calibration text would tie with the zeroed ones at score 0
        with torch.no_grad():
            for layer in model.model.decoder.layers:
                layer.fc1.bias += 3.0
    _zero_neurons(model)
    src = _save(model, tmp_path / "src")
    planned = estimate(Recipe(passes=[PRUNE]), RunOptions(model=str(src), output=str(tmp_path)), timing=False)
    ctx, path = _run(src, tmp_path / "out", data_dir, [PRUNE])
    pruned = load_model(str(path)).model
    ids = tiny_inputs()
    with torch.no_grad():
        ref, got = model(ids).logits, pruned(ids).logits
    assert torch.allclose(got, ref, atol=1e-5, rtol=0), (got - ref).abs().max()
    adapter = get_adapter(pruned)
    assert all(adapter.mlp_output(layer).in_features == WIDTH - ZEROED for layer in adapter.layers())
    cfg = json.loads((path / "config.json").read_text())
    key = "ffn_dim" if family == "opt" else "intermediate_size"
    assert cfg[key] == WIDTH - ZEROED and "pruned" in cfg["andactl"]["provides"]
    assert planned["output_parameters"] == count_parameters(pruned) == ctx.report["passes"][0]["result"][
        "parameters_after"]


def test_kept_neurons_are_the_highest_scores_with_their_weights_unchanged():
    """Against the test's own score (the output linear's input energy times its column's squared norm)."""
    model, _ = tiny_model("llama")
    source = {k: v.clone() for k, v in model.state_dict().items()}
    cal = tiny_calibration()
    energy = []
    hooks = [layer.mlp.down_proj.register_forward_pre_hook(lambda m, a: energy.append(a[0].double().pow(2)))
             for layer in model.model.layers]
    with torch.no_grad():
        for batch in cal.batches():
            model(**batch)
    for h in hooks:
        h.remove()
    layers = len(model.model.layers)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=cal)
    result = PruneMLP(PruneMLPConfig(ratio=0.3, round_to=4)).run(ctx)
    keep_n = kept_neurons(WIDTH, 0.3, 4)
    assert result["kept"] == keep_n == 64 and model.config.intermediate_size == keep_n
    for i, layer in enumerate(model.model.layers):
        e = sum(x.reshape(-1, WIDTH).sum(0) for x in energy[i::layers])
        down = source[f"model.layers.{i}.mlp.down_proj.weight"]
        keep = torch.argsort(e * down.double().pow(2).sum(0), descending=True)[:keep_n].sort().values
        assert torch.equal(layer.mlp.down_proj.weight, down[:, keep])
        for name in ("gate_proj", "up_proj"):
            assert torch.equal(getattr(layer.mlp, name).weight, source[f"model.layers.{i}.mlp.{name}.weight"][keep])


def test_prune_after_slice_round_trips_through_the_artifact(tiny_hf_dir, data_dir, tmp_path):
    """SliceGPT then pruning in one recipe: the artifact read back equals the in-memory model."""
    passes = [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}, PRUNE]
    ctx, path = _run(tiny_hf_dir, tmp_path / "out", data_dir, passes)
    ids = tiny_inputs()
    with torch.no_grad():
        mem, disk = ctx.model(ids).logits, load_model(str(path)).model(ids).logits
    assert torch.allclose(mem, disk, atol=1e-5, rtol=0)
    provides = json.loads((path / "config.json").read_text())["andactl"]["provides"]
    assert {"sliced", "pruned"} <= set(provides)


def test_cli_prune_then_recover_distils_from_the_source(tiny_hf_dir, data_dir, tmp_path):
    """`andactl prune` writes an artifact whose provenance names the source, so `recover` (KD, the
    default) finds its teacher without --teacher."""
    out = tmp_path / "pruned"
    res = invoke_cli("prune", tiny_hf_dir, "--ratio", "0.25", "--round-to", "8", "-o", out, "--cal-data", "ptb",
                     "--cal-split", "validation", "--cal-samples", "4", "--cal-seqlen", "64", "--data-dir", data_dir)
    assert res.exit_code == 0, res.stderr
    res = invoke_cli("recover", out, "-o", tmp_path / "rec", "--steps", "2", "--seqlen", "32", "--batch-size", "2",
                     "--held-out", "2", "--eval-every", "2", "--data-dir", data_dir)
    assert res.exit_code == 0, res.stderr
    report = json.loads((tmp_path / "rec" / "report.json").read_text())["passes"][0]["result"]
    assert report["teacher"] == str(tiny_hf_dir) and report["method"] == "kd"


@pytest.mark.parametrize("args, text", [
    (["--ratio", "0"], "prune ratio must be in (0, 1)"),
    (["--ratio", "1"], "prune ratio must be in (0, 1)"),
    (["--ratio", "0.5", "--round-to", "64"], "keeps no neuron"),
    (["--ratio", "1e-12", "--round-to", "1"], "removes no neuron"),
])
def test_bad_input_one_line_nothing_written(tiny_hf_dir, data_dir, tmp_path, args, text):
    out = tmp_path / "out"
    res = invoke_cli("prune", tiny_hf_dir, *args, "-o", out, "--cal-seqlen", "64", "--data-dir", data_dir)
    assert_error_line(res, text)
    assert not out.exists()

