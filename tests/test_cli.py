"""CLI: bad input gives one line on stderr and a non-zero exit; tiny end-to-end runs."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from andactl.cli.main import cli


def invoke(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env or {}, catch_exceptions=False)


def assert_one_line_error(res, pattern):
    assert res.exit_code != 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_help_lists_commands():
    res = invoke("--help")
    assert res.exit_code == 0
    for name in ("env", "eval", "inspect", "passes", "run", "slice"):
        assert name in res.stdout


def test_env_json(data_dir):
    res = invoke("env", "--format", "json", "--data-dir", str(data_dir))
    assert res.exit_code == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["data_dir"] == str(data_dir) and "llama" in info["supported_model_types"]
    assert info["torch_threads"] >= 1 and "backend" in info["kernels"]
    import torch

    from andactl.evaluation.throughput import cpu_name
    from andactl.kernels import split_gemm
    from andactl.models.loading import native_bf16

    assert info["cpu"] == {"name": cpu_name(), "torch_capability": torch.backends.cpu.get_cpu_capability(),
                           "native_bf16": native_bf16(), "amx_tiles": split_gemm.tiles_expected()}


def test_passes_lists_slicegpt():
    res = invoke("passes", "--format", "json")
    assert res.exit_code == 0
    names = {p["pass"]: p for p in json.loads(res.stdout)}
    assert names["rotate"]["requires"] == ["fused_norms"]
    assert names["rotate"]["excludes"] == ["rotated", "int4_weights", "packed", "anda_activations"]
    assert names["slice"]["excludes"] == ["sliced", "int4_weights", "packed", "anda_activations"]


def test_unknown_model():
    assert_one_line_error(invoke("eval", "no-such-model", "--tasks", "wikitext2"), r"unknown model 'no-such-model'.*smollm2-135m")


def test_missing_local_path_is_not_tried_on_the_hub(tiny_hf_dir, tmp_path, monkeypatch):
    """``runs/packd`` (a typo) or ``./missing`` reads like a hub id (org/name); with the folder before
    the slash present here it is a missing local path, refused at once, not after the hub client's
    retries. A name whose org is no local folder is still a hub id."""
    from andactl.models.loading import hub_id
    from andactl.preflight import model_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for source in ("runs/packd", "./missing"):
        assert not hub_id(source)
        assert_one_line_error(invoke("eval", source, "--tasks", "wikitext2"),
                              rf"unknown model '{re.escape(source)}': no such file or folder \(the folder .*/ exists, so "
                              r"it is read as a local path, not as a Hugging Face hub id\)")
        assert_one_line_error(invoke("recover", str(tiny_hf_dir), "--teacher", source, "-o", "out"),
                              rf"unknown teacher model '{re.escape(source)}': no such file or folder")
    monkeypatch.setattr("andactl.models.hub.unreachable", lambda: None)  # offline it is refused (test_hub_offline)
    assert hub_id("HuggingFaceTB/SmolLM2-135M") and model_source("HuggingFaceTB/SmolLM2-135M") == ("hub", None)


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt_neox"}))
    assert_one_line_error(invoke("eval", str(tmp_path)), r"unsupported architecture 'gpt_neox'; supported model types: llama")


def test_unknown_task(tiny_hf_dir):
    assert_one_line_error(invoke("eval", str(tiny_hf_dir), "--tasks", "piqa,squad"), r"unknown task 'squad'")


def test_missing_data_dir(tiny_hf_dir, tmp_path):
    assert_one_line_error(invoke("eval", str(tiny_hf_dir), "--data-dir", str(tmp_path / "nope")), r"data directory not found")


def test_data_dir_without_file(tiny_hf_dir, tmp_path):
    (tmp_path / "ptb").mkdir()
    assert_one_line_error(invoke("eval", str(tiny_hf_dir), "--tasks", "wikitext2", "--data-dir", str(tmp_path)),
                          r"wikitext2/test: none of wikitext2/wiki.test.raw in data dir")


def test_corrupt_artifact(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "andactl", "andactl": {"format_version": 2, "base_model_type": "llama", "dtype": "float32"},
        "quantization_config": {"quant_method": "andactl", "format": "anda-bitplane-int4", "config_groups": {}}}))
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    assert_one_line_error(invoke("inspect", str(tmp_path)), r"corrupt or not a safetensors file")


@pytest.mark.parametrize("doc,pattern", [
    ("- pass: shrink_everything\n", r"unknown pass 'shrink_everything'"),
    ("- pass: rotate\n  ratio: lots\n", r"ratio: expected a number"),
    ("- pass: slice\n", r"pass 'slice' \(step 1\) requires rotated"),
    ("passes: []\n", r"'passes' is empty: nothing to run"),
    ("[]\n", r"'passes' is empty: nothing to run"),
])
def test_bad_recipes(tiny_hf_dir, tmp_path, doc, pattern):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(doc)
    out = tmp_path / "out"
    assert_one_line_error(invoke("run", str(recipe), "--model", str(tiny_hf_dir), "-o", str(out)), pattern)
    assert not out.exists()


def test_a_usage_error_click_writes_on_two_lines_is_one(tmp_path):
    res = invoke("export", str(tmp_path), "-o", str(tmp_path / "o"))  # click: "Choose from:\n\tcompressed-tensors"
    assert_one_line_error(res, r"^error: Missing option '--to'. Choose from: compressed-tensors \(see --help\)$")
    assert res.exit_code == 2


def test_slice_bad_ratio(tiny_hf_dir, tmp_path):
    assert_one_line_error(invoke("slice", str(tiny_hf_dir), "--ratio", "1.0", "-o", str(tmp_path / "o")), r"--ratio must be in \[0, 1\)")


def test_eval_tiny_model_json(tiny_hf_dir, data_dir, tmp_path):
    out = tmp_path / "res.json"
    res = invoke("eval", str(tiny_hf_dir), "--tasks", "wikitext2", "--seqlen", "64", "--limit", "2",
                 "--data-dir", str(data_dir), "--format", "json", "--output_path", str(out))
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["model"] == str(tiny_hf_dir)
    wt = data["results"]["wikitext2"]
    assert wt["windows"] == 2 and wt["seqlen"] == 64 and 1 < wt["ppl"] < 1000
    assert json.loads(out.read_text()) == data


def test_eval_output_path_that_cannot_be_written(tiny_hf_dir, data_dir, tmp_path, monkeypatch):
    """A --output-path under a file is one line before any model loads; a write that fails at the end
    (here the rename) is one line after the results reached stdout, and leaves no partial file."""
    (tmp_path / "afile").write_text("x")
    args = ["eval", str(tiny_hf_dir), "--tasks", "wikitext2", "--seqlen", "64", "--limit", "1", "--data-dir", str(data_dir),
            "--format", "json"]
    assert_one_line_error(invoke(*args, "--output-path", str(tmp_path / "afile" / "r.json")),
                          rf"cannot create --output-path {re.escape(str(tmp_path / 'afile' / 'r.json'))}: .*afile is a file")
    import andactl.formats.output_dir as od

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(od.os, "replace", refuse)
    res = invoke(*args, "--output-path", str(tmp_path / "new" / "r.json"))
    assert res.exit_code == 2 and json.loads(res.stdout)["results"]["wikitext2"]["windows"] == 1
    assert res.stderr.strip().splitlines()[-1] == (f"error: could not write --output-path {tmp_path / 'new' / 'r.json'} "
                                                   "(No space left on device); the results are on stdout above")
    assert list((tmp_path / "new").iterdir()) == []


def test_example_recipes_are_valid():
    from pathlib import Path

    from andactl.manager import PassManager
    from andactl.pipeline import calibration_config
    from andactl.recipe import load_recipe

    paths = sorted((Path(__file__).resolve().parent.parent / "examples" / "recipes").glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        recipe = load_recipe(path)
        pm = PassManager.from_recipe(recipe.passes)
        pm.check(set())
        calibration_config(recipe.calibration)
        assert recipe.model == "smollm2-135m"


def test_run_summary_never_cuts_a_value_in_half():
    from andactl.cli.run_cmd import _brief

    items = ["method=kd", "full=False", "teacher=smollm2-135m", "trainable_parameters=8805888", "seed=42", "lr=0.001"]
    assert _brief(items) == ", ".join(items[:5]) + ", …"  # the whole set is 93 characters
    assert _brief(items, width=200) == ", ".join(items)
    assert _brief(["x=" + "9" * 100], width=10) == "x=9999999…"


def test_hub_client_retries_are_quiet_unless_verbose():
    # a hub id offline: the hub client's retry warnings (20 lines) would precede andactl's one error line
    import logging

    from andactl.cli.common import setup_logging

    retries = logging.getLogger("huggingface_hub.utils._http")
    try:
        setup_logging(0, False)
        assert not retries.isEnabledFor(logging.WARNING) and retries.isEnabledFor(logging.ERROR)
        setup_logging(1, False)
        assert retries.isEnabledFor(logging.WARNING)
        # -v: andactl's INFO and the hub client's warnings, not every library's INFO (torch printed
        # its FakeTensor cache statistics at exit); -vv: those too; -q wins over -v
        torch_log = logging.getLogger("torch")
        assert not torch_log.isEnabledFor(logging.INFO) and logging.getLogger("andactl").isEnabledFor(logging.INFO)
        setup_logging(2, False)
        assert torch_log.isEnabledFor(logging.INFO) and retries.isEnabledFor(logging.INFO)
        setup_logging(1, True)
        assert not retries.isEnabledFor(logging.WARNING) and not torch_log.isEnabledFor(logging.INFO)
        assert not logging.getLogger("andactl").isEnabledFor(logging.INFO)
    finally:
        setup_logging(0, False)


@pytest.mark.parametrize("args,text", [
    (("generate", "M", "--prompt", "hi", "--temperature", "nan"), "Invalid value for '--temperature': 'nan' is not a finite number"),
    (("generate", "M", "--prompt", "hi", "--seed", "-99999999999999999999"), "Invalid value for '--seed'"),
    (("slice", "M", "--ratio", "0.2", "-o", "o", "--seed", "99999999999999999999"), "Invalid value for '--seed'"),
    (("slice", "M", "--ratio", "0.2", "-o", "o", "--max-memory", "nan"), "Invalid value for '--max-memory': 'nan' is not a finite"),
    (("sweep", "M", "-o", "o", "--max-bytes", "nan"), "Invalid value for '--max-bytes': 'nan' is not a finite number"),
])
def test_nan_inf_and_oversized_seeds_refused(tiny_hf_dir, tmp_path, monkeypatch, args, text):
    """nan passes every bounded FloatRange (each comparison with nan is false): ``generate --temperature
    nan`` sampled with it; a seed beyond 64 bits was an internal error inside torch.manual_seed."""
    monkeypatch.chdir(tmp_path)
    res = invoke(*[str(tiny_hf_dir) if a == "M" else a for a in args])
    assert_one_line_error(res, re.escape(text))
    assert not (tmp_path / "o").exists()


def test_recipe_seed_beyond_64_bits_refused(tiny_hf_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"seed: {2**64}\npasses:\n- pass: fuse_norms\n")
    assert_one_line_error(invoke("run", str(recipe), "--model", str(tiny_hf_dir), "-o", str(tmp_path / "o")),
                          r"r.yaml: 'seed' must be an integer from -2\*\*63 to 2\*\*63 - 1, got 18446744073709551616")
    recipe.write_text("passes:\n- {pass: recover, seed: 18446744073709551616}\n")
    assert_one_line_error(invoke("run", str(recipe), "--model", str(tiny_hf_dir), "-o", str(tmp_path / "o")),
                          r"recovery seed must be an integer from -2\*\*63 to 2\*\*63 - 1")


def test_disk_full_anywhere_is_the_machines_state_not_a_bug(tiny_hf_dir, monkeypatch):
    """ENOSPC outside the artifact write (the model cache, a spill folder) is one line that names the
    path, exit 2, never "a bug in andactl"."""
    import errno

    import andactl.models.loading as loading

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/cache/models/x")

    monkeypatch.setattr(loading, "load_model", full)
    res = invoke("inspect", str(tiny_hf_dir))
    assert res.exit_code == 2
    assert_one_line_error(res, r"^error: No space left on device \(/cache/models/x\): free space there or point the "
                               r"output, ANDACTL_CACHE_DIR or TMPDIR elsewhere$")
