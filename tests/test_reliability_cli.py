"""Bad inputs and faults through the CLI (tiny models): exit code, exactly one stderr line, no
traceback, and the state of the output location afterwards. docs/RELIABILITY.md lists them."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from andactl.cli.main import cli

CAL = ["--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "2", "--cal-seqlen", "64"]


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env or {}, catch_exceptions=False)


def one_line_error(res, pattern, code=2):
    assert res.exit_code == code, (res.exit_code, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and re.search(pattern, lines[0]), lines[0]
    assert not re.match(r"error: (KeyError|TypeError|AttributeError)\b", lines[0])


def fails_in_pass(res, name, pattern, code=2):
    """A failure inside pass ``name``: the pass log marks it ✘ (never ✔), the last stderr line is
    the only error line, no traceback."""
    assert res.exit_code == code, (res.exit_code, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert "Traceback" not in res.stderr and [x for x in lines if x.startswith("error:")] == lines[-1:]
    assert re.search(pattern, lines[-1]), lines[-1]
    assert any(x.startswith(f"✘ {name} failed") for x in lines) and not any(x.startswith(f"✔ {name}") for x in lines)


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def artifact(tiny_hf_dir, tmp_path_factory):
    """A real artifact written through the CLI (``run`` of fuse_norms)."""
    base = tmp_path_factory.mktemp("rel")
    (base / "r.yaml").write_text("- pass: fuse_norms\n")
    res = invoke("run", base / "r.yaml", "--model", tiny_hf_dir, "-o", base / "art")
    assert res.exit_code == 0, res.stderr
    return base / "art"


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A user's working directory with files in it, as cwd."""
    proj = tmp_path / "project"
    proj.mkdir()
    (proj / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(proj)
    return proj


QUANT = ["quantize", "--weight-method", "rtn", "--bits", "6", "6", "6", "6", "--overwrite"]


@pytest.mark.parametrize("target,pattern", [
    ("", r"output path is empty"),
    (".", r"contains the current directory"),
    ("..", r"contains the current directory"),
    ("/", r"filesystem root"),
])
def test_overwrite_never_replaces_cwd_or_root(artifact, project, target, pattern):
    before = tree(project)
    one_line_error(invoke(QUANT[0], artifact, *QUANT[1:], "-o", target), pattern)
    assert tree(project) == before


def test_overwrite_never_replaces_home(artifact, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("mine")
    one_line_error(invoke(QUANT[0], artifact, *QUANT[1:], "-o", "~", env={"HOME": str(home)}), r"home directory")
    assert tree(home) == {".bashrc": b"mine"}


def test_overwrite_never_replaces_non_artifact(artifact, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"\xff\xd8")
    one_line_error(invoke(QUANT[0], artifact, *QUANT[1:], "-o", tmp_path / "photos"), r"not an andactl artifact")
    assert tree(tmp_path / "photos") == {"a.jpg": b"\xff\xd8"}


def test_existing_artifact_needs_overwrite(artifact, tiny_hf_dir, tmp_path):
    before = tree(artifact)
    (tmp_path / "r.yaml").write_text("- pass: fuse_norms\n")
    one_line_error(invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "-o", artifact), r"pass --overwrite")
    assert tree(artifact) == before


@pytest.mark.parametrize("make,pattern", [
    (lambda t: (t / "f").write_text("x") and t / "f" / "out", r"is a file, not a directory"),
    (lambda t: t / ("n" * 230), r"too long: with the temporary prefix"),
])
def test_bad_output_location_before_work(tiny_hf_dir, tmp_path, make, pattern):
    out = make(tmp_path)
    one_line_error(invoke("slice", tiny_hf_dir, "--ratio", "0.25", "-o", out, *CAL), pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["f"])


@pytest.mark.parametrize("args,pattern", [
    (["--cal-data", "wikitext2", "--cal-split", "test"], r"wikitext2/test is an evaluation split"),
    (["--cal-data", "imagenet"], r"unknown dataset 'imagenet'"),
    (["--cal-data", "alpaca", "--cal-split", "test"], r"dataset 'alpaca' has no split 'test'"),
    (["--cal-data", "mix", "--cal-split", "test"], r"dataset 'alpaca' has no split 'test'"),
    (["--cal-data", "ptb", "--cal-split", "validation", "--cal-seqlen", "4096"],
     r"--cal-seqlen 4096 exceeds the model's context length \(max_position_embeddings 128\)"),
])
def test_calibration_checked_before_load(tiny_hf_dir, tmp_path, args, pattern):
    one_line_error(invoke("slice", tiny_hf_dir, "--ratio", "0.25", "-o", tmp_path / "o", *args), pattern)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bits,pattern", [
    (["8", "7", "8"], r"--bits takes four numbers \(M_qkv M_o M_u M_d\); '-o' came before the fourth"),
    (["8", "7", "8", "-1"], r"-1 is not in the range 1<=x<=16"),
    (["8", "7", "8", "17"], r"17 is not in the range 1<=x<=16"),
])
def test_bits_that_are_not_four_numbers(tiny_hf_dir, tmp_path, bits, pattern):
    one_line_error(invoke("quantize", tiny_hf_dir, "--bits", *bits, "-o", tmp_path / "o"), pattern)
    assert list(tmp_path.iterdir()) == []


def test_missing_calibration_file(tiny_hf_dir, tmp_path):
    (tmp_path / "data" / "ptb").mkdir(parents=True)
    one_line_error(invoke("slice", tiny_hf_dir, "--ratio", "0.25", "-o", tmp_path / "o", *CAL, "--data-dir", tmp_path / "data"),
                   r"ptb/validation: none of ptb/ptb.valid.txt in data dir")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("block,pattern", [
    ("{tasks: wikitext2, limit: -3}", r"r.yaml: eval: limit must be an integer >= 1, got -3"),
    ("{tasks: wikitext2, limit: 2.5}", r"eval: limit must be an integer >= 1, got 2.5"),
    ("{tasks: wikitext2, seqlen: 4}", r"eval: seqlen must be an integer >= 8, got 4"),
    ("{tasks: wikitext2, batch: 4}", r"eval: unknown key\(s\) batch; allowed: tasks, limit, seqlen, backend"),
    ("{tasks: wikitext2, backend: gpu}", r"eval: unknown backend 'gpu'; choose from auto, cuda, cpp, reference"),
    ("[wikitext2]", r"'eval' must be a mapping"),
])
def test_recipe_eval_block_values_checked_before_the_run(tiny_hf_dir, tmp_path, block, pattern):
    """Values the evaluation would refuse only after the run and its write (a limit of -3 was an
    internal error once the artifact was written) are one line before anything runs, --dry-run too."""
    (tmp_path / "r.yaml").write_text(f"passes:\n  - pass: fuse_norms\neval: {block}\n")
    for extra in ([], ["--dry-run"]):
        one_line_error(invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "-o", tmp_path / "o", *extra), pattern)
    assert not (tmp_path / "o").exists()


def test_recipe_that_keeps_nothing_is_warned(tiny_hf_dir, tmp_path):
    (tmp_path / "r.yaml").write_text("passes:\n  - pass: fuse_norms\n")
    res = invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir)
    assert res.exit_code == 0 and "no output directory (the recipe's 'output' or -o) and no 'eval' block" in res.stderr
    res = invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "-o", tmp_path / "o")
    assert res.exit_code == 0 and "no output directory" not in res.stderr


def test_recipe_eval_block_checked_before_write(tiny_hf_dir, tmp_path):
    (tmp_path / "r.yaml").write_text("passes:\n  - pass: fuse_norms\neval:\n  tasks: wikitext2,squad\n")
    one_line_error(invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "-o", tmp_path / "o"), r"unknown task 'squad'")
    assert not (tmp_path / "o").exists()


def test_eval_seqlen_beyond_context(tiny_hf_dir, data_dir):
    one_line_error(invoke("eval", tiny_hf_dir, "--tasks", "wikitext2", "--seqlen", "4096", "--data-dir", data_dir),
                   r"--seqlen 4096 exceeds the model's context length \(max_position_embeddings 128\)")


def test_nan_weight_is_an_error(tiny_hf_dir, data_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(tiny_hf_dir, bad)
    state = load_file(str(bad / "model.safetensors"))
    state["model.layers.0.mlp.down_proj.weight"][0, 0] = float("nan")
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    one_line_error(invoke("eval", bad, "--tasks", "wikitext2", "--seqlen", "64", "--limit", "1", "--data-dir", data_dir),
                   r"tensor 'model.layers.0.mlp.down_proj.weight' contains NaN or Inf")


def test_nan_logits_are_an_error(tiny_hf_dir):
    from andactl.errors import NumericsError
    from andactl.evaluation.perplexity import window_losses
    from andactl.models.loading import load_model

    loaded = load_model(str(tiny_hf_dir))
    with torch.no_grad():
        loaded.model.model.layers[0].mlp.down_proj.weight.fill_(float("inf"))
    with pytest.raises(NumericsError, match="logits contain NaN or Inf"):
        window_losses(loaded.model, torch.arange(64).view(1, 64), 32)


SEARCH_RECIPE = """
calibration: {dataset: ptb, split: validation, samples: 2, seqlen: 64}
passes:
  - {pass: quantize_weights, method: rtn, group_size: 64}
  - {pass: anda_search, tolerance: 0.0000001, max_evals: 1, min_bits: 1, seed_low: 1, seed_high: 1%s}
  - {pass: pack}
"""


def test_search_accepting_nothing_fails_and_fallback_is_w4a16(tiny_hf_dir, data_dir, tmp_path):
    from andactl.cli.quantize_cmd import quantize_recipe

    steps = quantize_recipe("int4", "rtn", 64, False, False, False, None, 0.01, "energy", 4, "truncate", "anda", "w4a16")
    assert steps[1]["fallback"] == "w4a16"  # what --fallback-w4a16 asks for
    (tmp_path / "fail.yaml").write_text(SEARCH_RECIPE % "")
    res = invoke("run", tmp_path / "fail.yaml", "--model", tiny_hf_dir, "--data-dir", data_dir, "-o", tmp_path / "q")
    fails_in_pass(res, "anda_search", r"no mantissa tuple met tolerance 1e-07 in 1 evaluations \(nearest: \[1, 1, 1, 1\] loss .*pass --fallback-w4a16")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fail.yaml"]
    (tmp_path / "fb.yaml").write_text(SEARCH_RECIPE % ", fallback: w4a16")
    res = invoke("run", tmp_path / "fb.yaml", "--model", tiny_hf_dir, "--data-dir", data_dir, "-o", tmp_path / "q")
    assert res.exit_code == 0, res.stderr
    config = json.loads((tmp_path / "q" / "config.json").read_text())
    search = config["andactl"]["search"]
    assert search["found"] is False and search["tuple"] is None and set(search["bits"].values()) == {None}
    groups = config["quantization_config"]["config_groups"].values()
    assert [g["input_activations"] for g in groups] == [None]  # W4A16, never M = 16 Anda


def test_identical_runs_give_identical_bytes(tiny_hf_dir, data_dir, tmp_path):
    for name in ("a", "b"):  # the same commands, only -o differs (both quantize the same source)
        res = invoke("slice", tiny_hf_dir, "--ratio", "0.25", *CAL, "--data-dir", data_dir, "-o", tmp_path / f"s{name}")
        assert res.exit_code == 0, res.stderr
        res = invoke("quantize", tmp_path / "sa", "--weight-method", "rtn", "--group-size", "64",
                     "--bits", "5", "6", "7", "8", "-o", tmp_path / f"q{name}")
        assert res.exit_code == 0, res.stderr
    for kind in ("s", "q"):
        for file in ("model.safetensors", "config.json", "recipe.yaml"):
            assert (tmp_path / f"{kind}a" / file).read_bytes() == (tmp_path / f"{kind}b" / file).read_bytes(), (kind, file)


def test_corrupt_model_cache_is_named_and_rebuilt(tiny_hf_dir, tmp_path, monkeypatch, caplog):
    import shutil

    from andactl.models import loading

    cache = tmp_path / "models" / "model-1-2"
    shutil.copytree(tiny_hf_dir, cache)
    (cache / "model.safetensors").write_bytes(b"truncated")
    calls = []

    def convert(gguf):  # stands in for the GGUF conversion: rebuilds the folder when it is gone
        calls.append(cache.exists())
        if not cache.exists():
            shutil.copytree(tiny_hf_dir, cache)
        return cache

    monkeypatch.setattr(loading, "gguf_as_hf_dir", convert)
    with caplog.at_level("WARNING", logger="andactl"):
        model, _ = loading._load_cached(tmp_path / "model.gguf", torch.float32)
    assert calls == [True, False] and f"model cache {cache} is corrupt" in caplog.text
    assert (cache / "model.safetensors").read_bytes() == (tiny_hf_dir / "model.safetensors").read_bytes()


@pytest.mark.parametrize("command", [["inspect"], ["eval", "--tasks", "wikitext2"], ["slice", "--ratio", "0.25", "-o", "OUT"]])
def test_not_a_gguf_file_one_line(tmp_path, command):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"garbage, not GGUF")
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    one_line_error(invoke(args[0], gguf, *args[1:]), r"model.gguf' is not a GGUF file \(it does not start with the GGUF magic")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_gguf_transformers_cannot_read_is_one_line(tmp_path, monkeypatch):
    # the right magic, then nothing a GGUF reader can parse: named, nothing left in the cache
    monkeypatch.setenv("ANDACTL_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00cut")
    res = invoke("-q", "inspect", gguf)
    one_line_error(res, r"model.gguf': transformers cannot convert this GGUF file \(")
    assert not list((tmp_path / "cache" / "models").glob("model-*"))


def test_model_cache_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    # checked before the GGUF conversion (which this cut file would fail)
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ANDACTL_CACHE_DIR", str(blocker))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00cut")
    one_line_error(invoke("-q", "inspect", gguf),
                   r"cannot write the model cache at .*cache/models \(Not a directory\); point ANDACTL_CACHE_DIR")
    assert blocker.read_text() == "a file where the cache folder should be"


def test_disk_space_checked_before_load(tiny_hf_dir, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from andactl import preflight

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    one_line_error(invoke("slice", tiny_hf_dir, "--ratio", "0.25", "-o", tmp_path / "o", *CAL),
                   r"not enough disk space for the artifact at .*/o: needs about [0-9.]+ MB, 0.0 MB free")
    assert list(tmp_path.iterdir()) == [] and shutil.disk_usage is preflight.shutil.disk_usage


def test_run_eval_step_selects_backend(tiny_hf_dir, data_dir, tmp_path):
    (tmp_path / "r.yaml").write_text(
        "passes:\n  - {pass: quantize_weights, method: rtn, group_size: 64}\n  - {pass: set_anda_bits, bits: [8, 8, 8, 8]}\n"
        "  - {pass: pack}\neval: {tasks: wikitext2, seqlen: 64, limit: 1, backend: reference}\n")
    res = invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "--data-dir", data_dir, "-o", tmp_path / "q",
                 "--format", "json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["eval_backend"] == "reference" and summary["eval"]["wikitext2"]["windows"] == 1


_SLICE_AND_EVAL = ("calibration: {dataset: ptb, split: validation, samples: 2, seqlen: 64, batch_size: 2}\n"
                   "storage_dtype: fp32\npasses:\n  - {pass: fuse_norms}\n  - {pass: rotate, ratio: 0.5}\n"
                   "  - {pass: slice}\neval: {tasks: wikitext2, seqlen: 64, limit: 2}\n")


def test_run_without_output_evaluates_its_own_model(tiny_hf_dir, data_dir, tmp_path):
    """A recipe with an ``eval:`` block and no output evaluates the model the passes made (it
    evaluated the source and reported that as the run's result): the same perplexity as the run that
    writes its (float32) artifact, not the source's."""
    (tmp_path / "r.yaml").write_text(_SLICE_AND_EVAL)
    ppl = {}
    for name, out in (("memory", []), ("artifact", ["-o", tmp_path / "s"])):
        res = invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "--data-dir", data_dir, *out, "--format", "json")
        assert res.exit_code == 0, res.stderr
        ppl[name] = json.loads(res.stdout)["eval"]["wikitext2"]["ppl"]
    res = invoke("eval", tiny_hf_dir, "--data-dir", data_dir, "--tasks", "wikitext2", "--seqlen", "64", "--limit", "2",
                 "--dtype", "float32", "--format", "json")
    source = json.loads(res.stdout)["results"]["wikitext2"]["ppl"]
    assert ppl["memory"] == pytest.approx(ppl["artifact"], rel=1e-6)
    assert abs(ppl["memory"] - source) > 1e-3 * source


def test_run_releases_its_model_before_loading_the_artifact_to_evaluate(tiny_hf_dir, data_dir, tmp_path, monkeypatch):
    """The eval step loads the written artifact with nothing of the run left alive beside it (the
    run's model stayed: full.yaml's chain peaked 1.2 GB above `andactl eval` of its artifact)."""
    import gc
    import weakref

    from andactl import pipeline
    from andactl.models import loading

    refs, alive_at_load = [], []
    real_run, real_load = pipeline.run_recipe, loading.load_model

    def run_recipe(*a, **k):
        ctx, path, resolved = real_run(*a, **k)
        refs.append(weakref.ref(ctx.model))
        return ctx, path, resolved

    def load_model(*a, **k):
        gc.collect()
        alive_at_load.append(refs[0]() is not None)
        return real_load(*a, **k)

    monkeypatch.setattr(pipeline, "run_recipe", run_recipe)
    monkeypatch.setattr(loading, "load_model", load_model)
    (tmp_path / "r.yaml").write_text(_SLICE_AND_EVAL)
    res = invoke("run", tmp_path / "r.yaml", "--model", tiny_hf_dir, "--data-dir", data_dir, "-o", tmp_path / "s")
    assert res.exit_code == 0, res.stderr
    assert alive_at_load[-1] is False


def test_truncated_weights_in_hf_folder(tiny_hf_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_hf_dir, bad)
    (bad / "model.safetensors").write_bytes((tiny_hf_dir / "model.safetensors").read_bytes()[:1000])
    one_line_error(invoke("eval", bad, "--tasks", "wikitext2", "--seqlen", "64", "--limit", "1"),
                   rf"{bad}: corrupt weights file \(SafetensorError: ")


@pytest.mark.parametrize("command", [("inspect",), ("eval", "--tasks", "wikitext2", "--seqlen", "64"),
                                     ("slice", "--ratio", "0.2", "-o", "out", "--dry-run"), ("slice", "--ratio", "0.2", "-o", "out")])
def test_config_transformers_refuses_is_one_line(artifact, tiny_hf_dir, tmp_path, monkeypatch, command):
    """A config.json edited into one transformers' validators refuse (hidden size 7 with 4 heads), in
    an artifact or a plain HF folder: one line with transformers' reason, before any weight is read
    (was an internal-error line from the validator's own error type, or a message of two lines)."""
    import shutil

    monkeypatch.chdir(tmp_path)
    for source, name in ((artifact, "art"), (tiny_hf_dir, "hf")):
        shutil.copytree(source, name)
        config = json.loads((tmp_path / name / "config.json").read_text())
        config["hidden_size"] = 7
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        one_line_error(invoke(command[0], name, *command[1:]),
                       rf"^error: {name}/config.json does not describe a valid llama model \(ValueError: The hidden size "
                       r"\(7\) is not a multiple of the number of attention heads \(4\)\.\)$")
    assert not (tmp_path / "out").exists()


def test_gguf_converted_meanwhile_by_another_process_is_used(tiny_hf_dir, tmp_path, monkeypatch):
    """Two commands started at once on a GGUF not yet in the cache both convert it; the one that
    finishes second found the first one's folder at the target (its rename failed: an internal-error
    line) and now uses that complete copy, leaving no partial folder behind."""
    import shutil

    import andactl.models.loading as loading

    monkeypatch.setenv("ANDACTL_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    target = loading.gguf_cache_target(gguf)
    real = loading._from_pretrained

    def convert_while_another_finishes(path, dtype, **kwargs):
        shutil.copytree(tiny_hf_dir, target)  # the other process's complete copy
        return real(str(tiny_hf_dir), dtype, local_files_only=True)

    monkeypatch.setattr(loading, "_from_pretrained", convert_while_another_finishes)
    assert loading.gguf_as_hf_dir(gguf) == target
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    assert not (target / "andactl_source.json").exists()  # the other copy, untouched


def test_any_run_warns_when_its_estimate_exceeds_the_memory_available(tiny_hf_dir, data_dir, tmp_path, monkeypatch):
    """Not only a recovery: `quantize --cal-batch-size 64 --cal-seqlen 2048` on SmolLM2 is estimated
    at 39 GB (the search's logits) and, by the estimate, 18 minutes of GPTQ come before that search; now
    one warning up front names the pass and the cheaper way. The run itself goes on."""
    import andactl.dry_run.memory as dr

    monkeypatch.setattr(dr, "default_max_memory_gb", lambda: 0.001 * dr.STREAM_RAM_SHARE)
    res = invoke("quantize", tiny_hf_dir, *CAL, "--cal-batch-size", "2", "--weight-method", "rtn", "--data-dir", data_dir,
                 "-o", tmp_path / "q")
    assert res.exit_code == 0, res.stderr
    text = " ".join(res.stderr.split())
    assert re.search(r"estimated peak host RAM [\d.]+ GB \(pass '\w+'\) exceeds the 0\.00 GB available: the run may be "
                     r"killed", text), text
    monkeypatch.setattr(dr, "default_max_memory_gb", lambda: 1e6)
    res = invoke("quantize", tiny_hf_dir, *CAL, "--weight-method", "rtn", "--data-dir", data_dir, "-o", tmp_path / "q2")
    assert res.exit_code == 0 and "may be killed" not in res.stderr


def test_search_estimate_names_the_calibration_batch():
    from andactl.dry_run.estimate import estimate
    from andactl.pipeline import RunOptions
    from andactl.recipe import Recipe

    passes = [{"pass": "quantize_weights"}, {"pass": "anda_search"}, {"pass": "pack"}]
    cal = {"dataset": "alpaca", "samples": 64, "seqlen": 2048}
    report = estimate(Recipe(passes=passes, calibration={**cal, "batch_size": 64}),
                      RunOptions(model="smollm2-135m", output=None), check_disk=False, timing=False)
    search = next(r for r in report["passes"] if r["pass"] == "anda_search")
    assert search["hint"] == "a smaller --cal-batch-size holds fewer sequences' logits at once (now 64)"
    single = estimate(Recipe(passes=passes, calibration={**cal, "batch_size": 1}),
                      RunOptions(model="smollm2-135m", output=None), check_disk=False, timing=False)
    assert "hint" not in next(r for r in single["passes"] if r["pass"] == "anda_search")


def test_conversion_killed_earlier_is_cleaned_up(tiny_hf_dir, tmp_path, monkeypatch, caplog):
    """A GGUF conversion killed by SIGKILL left its partial folder (a float32 copy of the model,
    0.5 GB for SmolLM2) in the model cache for good; the next conversion there removes it and says
    so. A live process's partial folder is left alone."""
    import logging
    import os
    import subprocess
    import sys

    import andactl.models.loading as loading

    monkeypatch.setenv("ANDACTL_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    target = loading.gguf_cache_target(gguf)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = target.parent / f".{target.name}.partial-{proc.pid}-0badc0de"
    live = target.parent / f".{target.name}.partial-{os.getppid()}-0badc0de"
    for leftover in (dead, live):
        leftover.mkdir(parents=True)
        (leftover / "model.safetensors").write_bytes(b"x" * 100)
    real = loading._from_pretrained
    monkeypatch.setattr(loading, "_from_pretrained",
                        lambda path, dtype, **kw: real(str(tiny_hf_dir), dtype, local_files_only=True))
    with caplog.at_level(logging.WARNING, logger="andactl"):
        assert loading.gguf_as_hf_dir(gguf) == target
    assert not dead.exists() and live.is_dir() and (target / "config.json").is_file()
    assert f"removing {dead}, left by an earlier run (pid {proc.pid}) that was killed" in caplog.text
