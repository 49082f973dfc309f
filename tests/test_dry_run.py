"""``--dry-run`` reads no weights, counts parameters exactly from the config (sliced artifacts
included) and refuses an output disk without room, in one line."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from tiny_models import tiny_calibration, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.cli.main import cli
from andactl.context import PassContext
from andactl.formats.artifact import save_artifact
from andactl.models.adapters import get_adapter
from andactl.models.stats import count_parameters
from andactl.passes.fuse_norms import FuseNorms
from andactl.passes.rotate import Rotate, RotateConfig
from andactl.passes.slice import Slice


def _garbage_weights(folder) -> None:
    (folder / "model.safetensors").write_bytes(b"\xff" * 4096)  # any weight read fails


def _dry(*args):
    res = CliRunner().invoke(cli, [*args, "--dry-run", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_dry_run_reads_no_weights_and_counts_exactly(tmp_path):
    model, _ = tiny_model("llama")
    src = tmp_path / "src"
    model.config.save_pretrained(src)
    _garbage_weights(src)
    out = tmp_path / "out"
    small = _dry("slice", str(src), "--ratio", "0.25", "-o", str(out), "--cal-samples", "4", "--cal-seqlen", "64", "--cal-batch-size", "4")
    big = _dry("slice", str(src), "--ratio", "0.25", "-o", str(out), "--cal-samples", "4000", "--cal-seqlen", "64", "--cal-batch-size", "4")
    assert not out.exists()
    assert small["parameters"] == count_parameters(model)
    assert [r["pass"] for r in small["passes"]] == ["load", "fuse_norms", "rotate", "slice", "write"]
    assert small["peak_host_ram_gb"] == max(r["host_ram_gb"] for r in small["passes"])
    rot = {d["calibration_tokens_per_rank"]: next(r for r in d["passes"] if r["pass"] == "rotate") for d in (small, big)}
    grown = rot[4000 * 64]["host_ram_gb"] - rot[4 * 64]["host_ram_gb"]
    assert abs(grown - (4000 - 4) * 64 * 64 * 4 / 1e9) < 2e-3  # the calibration residual N*D*b, float32
    q = _dry("quantize", str(src), "--bits", "7", "7", "7", "7", "-o", str(out), "--cal-samples", "8", "--cal-seqlen", "64")
    assert [r["pass"] for r in q["passes"]] == ["load", "quantize_weights", "set_anda_bits", "pack", "quantize_tables", "write"]
    # no forward in these: seconds from sizes, not a calibration pass (they used to count one each)
    secs = {r["pass"]: r["seconds"] for r in q["passes"]}
    assert secs["set_anda_bits"] == 0.0 and secs["pack"] == 1.0 and secs["quantize_tables"] < 0.1
    rates = q["cpu_flop_rates"]  # measured on this CPU: a short float32 torch.mm times the fitted share
    assert 1e8 < rates["float32"] < 1e14 and rates["run"] == rates["float32"]  # a float32 run
    assert rates["float64"] == pytest.approx(0.5 * rates["float32"], rel=1e-2)  # each rounded to 3 digits


def test_dry_run_counts_sampling_model_text(tmp_path):
    """--cal-data self / mix: a "sample calibration" row after load (mix samples half the sequences:
    mix at 4 samples equals self at 2), holding the KV cache of one sampling batch; alpaca has none."""
    model, _ = tiny_model("llama")
    src = tmp_path / "src"
    model.config.save_pretrained(src)
    _garbage_weights(src)

    def dry(data, samples, seqlen=64):
        d = _dry("slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--cal-data", data,
                 "--cal-samples", str(samples), "--cal-seqlen", str(seqlen), "--cal-batch-size", "4")
        return {r["pass"]: r for r in d["passes"]}

    assert "sample calibration" not in dry("alpaca", 4)
    own, mix = dry("self", 2)["sample calibration"], dry("mix", 4)["sample calibration"]
    assert list(dry("self", 2)) == ["load", "sample calibration", "fuse_norms", "rotate", "slice", "write"]
    assert own["seconds"] > 0 and own == mix
    # a wider config (read only: nothing is allocated) so that the KV cache shows in the GB column
    from transformers import LlamaConfig

    wide = tmp_path / "wide"
    LlamaConfig(hidden_size=256, intermediate_size=512, num_attention_heads=8, num_key_value_heads=2,
                num_hidden_layers=8, vocab_size=1000, max_position_embeddings=4096).save_pretrained(wide)
    _garbage_weights(wide)
    rows = {r["pass"]: r for r in _dry("slice", str(wide), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--cal-data", "self",
                                       "--cal-samples", "4", "--cal-seqlen", "4096", "--cal-batch-size", "4")["passes"]}
    kv = 4 * 4096 * 8 * 2 * (2 * 32) * 4 + 2 * 4 * 1000 * 4  # batch 4 x 4096 tokens x 8 layers x K,V x 64 wide, float32
    assert rows["sample calibration"]["host_ram_gb"] - rows["load"]["host_ram_gb"] == pytest.approx(kv / 1e9, abs=2e-3)
    assert rows["sample calibration"]["seconds"] > own["seconds"]  # a bigger model, 64x the steps


def _sliced_artifact(tmp_path, family: str):
    """A tiny model of ``family`` sliced by 25% and saved as an artifact whose weights cannot be read;
    returns (in-memory sliced model, artifact folder)."""
    model, _ = tiny_model(family)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=tiny_calibration())
    with torch.no_grad():
        FuseNorms().run(ctx)
        Rotate(RotateConfig(ratio=0.25)).run(ctx)
        Slice().run(ctx)
    art = save_artifact(tmp_path / "sliced", model, char_tokenizer(),
                        {"provides": ["fused_norms", "rotated", "sliced"]}, records=ctx.records)
    _garbage_weights(art)  # reading a weight fails
    return model, art


def test_dry_run_of_a_sliced_artifact_counts_shortcuts(tmp_path):
    model, art = _sliced_artifact(tmp_path, "qwen2")
    report = _dry("quantize", str(art), "--bits", "6", "6", "6", "6", "-o", str(tmp_path / "q"))
    assert report["parameters"] == count_parameters(model)


def test_slicing_a_sliced_artifact_is_refused_before_loading(tmp_path):
    _, art = _sliced_artifact(tmp_path, "llama")  # loading it would fail with another message
    for extra in ([], ["--dry-run"]):
        res = CliRunner().invoke(cli, ["slice", str(art), "--ratio", "0.1", "-o", str(tmp_path / "o"), *extra])
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "pass 'rotate' (step 2) cannot run after rotated, which the input model" in res.stderr
        assert not (tmp_path / "o").exists()


def test_dry_run_refuses_a_full_disk(tmp_path, monkeypatch):
    import andactl.dry_run.costs as costs

    model, _ = tiny_model("opt")
    model.config.save_pretrained(tmp_path / "src")
    monkeypatch.setattr(costs, "free_disk", lambda output: 1000)
    res = CliRunner().invoke(cli, ["slice", str(tmp_path / "src"), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--dry-run"])
    assert res.exit_code != 0 and len(res.stderr.strip().splitlines()) == 1
    assert "GB on disk and only 0.0 GB is free" in res.stderr


def test_max_memory_below_the_estimate_is_refused_before_loading(tmp_path):
    model, _ = tiny_model("llama")
    src = tmp_path / "src"
    model.config.save_pretrained(src)
    _garbage_weights(src)  # a real run would fail on these: the refusal must come first
    res = CliRunner().invoke(cli, ["slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--max-memory", "0.1",
                                   "--no-stream"])
    assert res.exit_code != 0 and not (tmp_path / "o").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--max-memory 0.1 GB is below the estimated peak host RAM" in lines[0]
    assert "in pass 'load'" in lines[0] or "in pass 'fuse_norms'" in lines[0] or "in pass 'rotate'" in lines[0]
    # by default a run over --max-memory streams layer by layer; below what one layer needs it is refused
    res = CliRunner().invoke(cli, ["slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--max-memory", "0.1"])
    assert res.exit_code != 0 and not (tmp_path / "o").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--max-memory 0.1 GB is below what a layer-wise streamed run needs" in lines[0], lines
    assert not list(tmp_path.glob(".o.*"))  # no spill directory left


def test_only_a_dry_run_probes_the_cpu(tiny_hf_dir, data_dir, tmp_path, monkeypatch):
    """A run that follows in the same process is never preceded by the rate probe's GEMMs: with them
    `andactl quantize smollm2-135m` wrote one of three different artifacts at 2 threads (stop 38)."""
    import andactl.dry_run.rates as dr

    calls = []
    monkeypatch.setattr(dr, "_gemm_flops", lambda dtype, *rows: calls.append(dtype) or 1e11)
    args = ["quantize", tiny_hf_dir, "--weight-method", "rtn", "--bits", "8", "8", "8", "8", "--data-dir", data_dir]
    res = CliRunner().invoke(cli, [str(a) for a in args + ["-o", tmp_path / "q"]], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    res = CliRunner().invoke(cli, [str(a) for a in args + ["-o", tmp_path / "q2", "--max-memory", "100"]],
                             catch_exceptions=False)
    assert res.exit_code == 0 and calls == [], (res.stderr, calls)  # the memory decisions need no rates
    res = CliRunner().invoke(cli, [str(a) for a in args + ["-o", tmp_path / "q3", "--dry-run", "--format", "json"]],
                             catch_exceptions=False)
    assert res.exit_code == 0 and calls and json.loads(res.stdout)["rates_probed"] is True


@pytest.mark.parametrize("family", ["llama", "qwen3", "phi3", "opt", "phi"])
@pytest.mark.parametrize("ratio,slice_head", [(0.25, False), (0.5, True)])
def test_planned_slicing_counts_the_sliced_model_exactly(family, ratio, slice_head):
    """The dry run's parameter count of a planned slice (untied head, cut linears, shortcuts) is the
    sliced model's count_parameters, for every block layout (sequential, parallel, biased)."""
    from andactl.models.slice_count import slice_terms, sliced_parameters
    from andactl.passes.rotate import slicing_plan

    model, _ = tiny_model(family)
    adapter = get_adapter(model)
    terms = slice_terms(adapter)
    cfg = RotateConfig(ratio=ratio, slice_head=slice_head)
    planned = sliced_parameters(terms, slicing_plan(adapter.hidden_size, len(adapter.layers()), cfg))
    ctx = PassContext(model=model, adapter=adapter, tokenizer=None, _calibration=tiny_calibration())
    with torch.no_grad():
        FuseNorms().run(ctx)
        Rotate(cfg).run(ctx)
        Slice().run(ctx)
    assert planned == count_parameters(model)
    assert slice_terms(get_adapter(model)) is None  # a sliced tree has recorded widths, nothing to plan


def test_a_slice_that_grows_the_model_is_named_before_the_work(tiny_hf_dir, data_dir, tmp_path):
    """A ratio small enough that the untied head and the shortcuts outweigh the cut gets one warning
    line (with the planned count, equal to the written model's) before the rotation's work; a ratio
    that shrinks the model gets none."""
    def slice_(ratio, out):
        args = ["slice", tiny_hf_dir, "--ratio", ratio, "-o", out, "--cal-samples", "4", "--cal-seqlen", "32",
                "--data-dir", data_dir]
        res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
        return res.stderr

    source = count_parameters(tiny_model("llama")[0])
    err = " ".join(slice_("0.125", tmp_path / "small").split())  # the log wraps long lines
    assert err.count("larger than the source") == 1, err
    assert err.index("fuse_norms in") < err.index("larger than") < err.index("rotate in"), err
    written = json.loads((tmp_path / "small" / "report.json").read_text())["slicing"]["parameters_after"]
    assert written > source and f"{written / source:.2f}x the source's" in err
    err = slice_("0.75", tmp_path / "big")
    assert "larger than the source" not in err
    assert json.loads((tmp_path / "big" / "report.json").read_text())["slicing"]["parameters_after"] < source


@pytest.mark.parametrize("load,warned", [(1.9, True), (0.4, False)])
def test_dry_run_warns_when_the_cpus_are_busy(tiny_hf_dir, data_dir, tmp_path, monkeypatch, load, warned):
    """The rate probe beside other work reads low (2320 s estimated against 411 s idle, stop 46):
    a dry run on a machine whose load is at least half its CPUs says so in one stderr line, its
    JSON on stdout untouched; bad input under load still gets exactly one line."""
    import andactl.dry_run.costs as costs
    import andactl.dry_run.rates as dr

    monkeypatch.setattr(dr, "_gemm_flops", lambda dtype, *rows: 1e11)
    monkeypatch.setattr(dr.os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(dr.os, "cpu_count", lambda: 2)
    args = ["quantize", tiny_hf_dir, "--weight-method", "rtn", "--bits", "8", "8", "8", "8", "--data-dir", data_dir,
            "-o", tmp_path / "q", "--dry-run", "--format", "json"]
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert ("the CPUs are busy (1-minute load 1.9 on 2 CPUs)" in res.stderr) is warned, res.stderr
    assert json.loads(res.stdout)["rates_probed"] is True
    monkeypatch.setattr(costs, "free_disk", lambda output: 1000)  # bad input stays one line, busy or not
    res = CliRunner().invoke(cli, [str(a) for a in args[:-5] + ["-o", tmp_path / "q2", "--dry-run"]])
    assert res.exit_code != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "GB is free" in res.stderr


def test_fisher_search_is_timed_on_this_cpu_at_the_models_shape(monkeypatch):
    """The dry run's subspace search: a probe times the search's own step at the model's width (or at
    FISHER_PROBE_MAX_HIDDEN with the same share cut, scaled by D^2 x cut); without a probe the FLOP
    model at the float64 rate."""
    import andactl.dry_run.rates as dr
    import andactl.passes.pca as pca

    calls = []
    monkeypatch.setattr(pca, "search_step_seconds", lambda D, cut: calls.append((D, cut)) or 0.01)
    rates = {"float64": 5e10}
    assert dr.fisher_search_seconds(576, 144, rates, probe=True) == pytest.approx(pca.FISHER_ITERS * 0.01, rel=1e-12)
    assert calls == [(576, 144)]
    wide = dr.fisher_search_seconds(4096, 1024, rates, probe=True)  # probed at 1024 wide, a quarter cut
    assert calls[-1] == (1024, 256)
    assert wide == pytest.approx(pca.FISHER_ITERS * 0.01 * (4096**2 * 1024) / (1024**2 * 256), rel=1e-12)
    flops = dr.fisher_search_seconds(576, 144, rates, probe=False)
    assert len(calls) == 2  # no probe
    assert flops == pytest.approx(pca.FISHER_ITERS * dr.FISHER_SEARCH_FLOPS * 576**2 * 144 / 5e10, rel=1e-12)


def test_a_fisher_dry_run_rows_follow_the_timed_step(tiny_hf_dir, data_dir, tmp_path, monkeypatch):
    """`slice --basis fisher --dry-run`: the rotate row grows by (2 L + 1) searches x FISHER_ITERS
    steps x the timed step; a real run (no dry run) never times the step."""
    import andactl.passes.pca as pca

    step = {"s": 0.01}
    calls = []
    monkeypatch.setattr(pca, "search_step_seconds", lambda D, cut: calls.append((D, cut)) or step["s"])
    args = ["slice", str(tiny_hf_dir), "--ratio", "0.25", "--basis", "fisher", "--cal-data", "ptb", "--cal-split",
            "validation", "--cal-samples", "4", "--cal-seqlen", "64", "--data-dir", str(data_dir)]
    rows = []
    for s in (0.01, 0.02):
        step["s"] = s
        rows.append(next(r for r in _dry(*args, "-o", str(tmp_path / "d"))["passes"] if r["pass"] == "rotate"))
    layers = json.loads((tiny_hf_dir / "config.json").read_text())["num_hidden_layers"]
    assert rows[1]["seconds"] - rows[0]["seconds"] == pytest.approx((2 * layers + 1) * pca.FISHER_ITERS * 0.01, abs=0.2)
    probed = len(calls)
    assert probed == 2
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "run"), "--max-memory", "100"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert len(calls) == probed  # the run planned its memory without timing anything


def test_the_search_step_probe_times_a_real_step():
    """search_step_seconds runs fisher_basis's step on this CPU: positive, and a wider shape costs more."""
    from andactl.passes.pca import search_step_seconds

    small, big = search_step_seconds(32, 8, steps=3), search_step_seconds(384, 96, steps=3)
    assert 0 < small < big < 5.0


@pytest.mark.parametrize("free,line", [(71.746, "(71.7 GB free there)"), (None, "(free space unknown)")])
def test_dry_run_summary_names_the_free_disk_in_gb(capsys, free, line):
    from andactl.dry_run.estimate import human

    human({"model": "m", "model_type": "llama", "parameters": 10**6, "dtype": "float32", "device": "cpu",
            "world_size": 1, "passes": [{"pass": "load", "host_ram_gb": 1.0, "device_gb": 0.0, "seconds": 1.0}],
            "peak_host_ram_gb": 1.0, "peak_device_gb": 0.0, "output_parameters": 10**6, "disk_gb": 0.26,
            "free_disk_gb": free, "seconds": 1.0})
    assert f"0.26 GB on disk {line}, about 1 s" in capsys.readouterr().out


def _wide_llama(tmp_path):
    """A config-only llama folder (garbage weights) wide enough for GB-sized rows: hidden 1024, vocabulary 32000."""
    from tiny_models import tiny_config

    cfg = tiny_config("llama")
    cfg.update({"hidden_size": 1024, "intermediate_size": 2816, "num_attention_heads": 16, "num_key_value_heads": 16,
                "num_hidden_layers": 2, "max_position_embeddings": 4096, "vocab_size": 32000})
    src = tmp_path / "src"
    cfg.save_pretrained(src)
    _garbage_weights(src)
    return src


def test_dry_run_counts_attention_as_loaded_and_int4_codes_until_pack(tmp_path):
    """transformers loads every family with sdpa, which never holds the B·H·S² float32 scores eager
    attention does (counting them put the default SmolLM2 slice at 5.17 GB against 2.76 GB
    measured); the search's row holds the INT4 codes quantize_weights made, until pack."""
    from andactl.dry_run.costs import BASE_RSS, INT4_UNPACKED_BYTES_PER_WEIGHT, attention_bytes
    from andactl.dry_run.shape import model_shape

    src = _wide_llama(tmp_path)
    shape = model_shape(str(src))
    assert shape.attention == "sdpa"
    B, S = 16, 2048
    assert attention_bytes(shape, B, S) == B * S * S  # at most a padded batch's bool mask
    eager = type(shape)(**{**shape.__dict__, "attention": "eager"})
    assert attention_bytes(eager, B, S) == B * shape.heads * S * S * 4
    cal = ["--cal-samples", str(B), "--cal-seqlen", str(S), "--cal-batch-size", str(B)]
    rot = next(r for r in _dry("slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), *cal)["passes"]
               if r["pass"] == "rotate")
    assert rot["host_ram_gb"] < attention_bytes(eager, B, S) / 1e9  # eager's scores alone would be more
    rows = {r["pass"]: r["host_ram_gb"] for r in
            _dry("quantize", str(src), "-o", str(tmp_path / "o"), *cal)["passes"]}
    P, D = shape.parameters, shape.hidden
    int4 = int((P - shape.resident_params) * INT4_UNPACKED_BYTES_PER_WEIGHT)
    act = B * S * (4 * D + 2 * shape.widest) * 4 + B * S * S
    expected = BASE_RSS + P * 4 + int4 + B * S * shape.vocab * 4 + act
    assert rows["anda_search"] == pytest.approx(expected / 1e9, abs=1.5e-3)


def test_dry_run_counts_gptq_tables_as_gptq(tmp_path):
    """``--table-method gptq`` runs the body over the calibration text and GPTQ on the float32
    vocabulary matrix (TABLE_GPTQ_COPIES of it; SmolLM2: 1.99 GB measured where the RTN row said
    1.38), not RTN's copies in the run dtype."""
    from andactl.dry_run.costs import BASE_RSS, TABLE_COPIES, TABLE_GPTQ_COPIES
    from andactl.dry_run.shape import model_shape

    src = _wide_llama(tmp_path)
    shape = model_shape(str(src))
    args = ["quantize", str(src), "-o", str(tmp_path / "o"), "--bits", "7", "7", "7", "7", "--cal-samples", "4",
            "--cal-seqlen", "256", "--cal-batch-size", "4"]
    rtn = {r["pass"]: r for r in _dry(*args)["passes"]}["quantize_tables"]
    report = _dry(*args, "--table-method", "gptq")
    gptq, rates = {r["pass"]: r for r in report["passes"]}["quantize_tables"], report["cpu_flop_rates"]
    table, act = shape.vocab * shape.hidden, 4 * 256 * (4 * shape.hidden + 2 * shape.widest) * 4 + 4 * 256 * 256
    assert rtn["host_ram_gb"] == pytest.approx((BASE_RSS + shape.parameters * 4 + TABLE_COPIES * table * 4) / 1e9, abs=1.5e-3)
    assert gptq["host_ram_gb"] == pytest.approx((BASE_RSS + shape.parameters * 4 + TABLE_GPTQ_COPIES * table * 4 + act) / 1e9,
                                                abs=1.5e-3)
    body = 2 * (shape.parameters - shape.resident_params) * 4 * 256  # a forward of the decoder body, no head
    assert gptq["seconds"] == pytest.approx(body / rates["run"] + 2 * table * shape.hidden / rates["float32"], rel=0.02, abs=0.1)
