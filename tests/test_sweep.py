"""andactl sweep: grid validation, Pareto frontier and budget pick on synthetic points, and a
tiny-model sweep end to end through the CLI with its resume."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from andactl.cli.main import cli
from andactl.errors import ConfigError
from andactl.sweep.grid import build_grid, parse_floats
from andactl.sweep.pareto import frontier, pick_best
from andactl.sweep.runner import MARKER, check_sweep_dir


def _pt(key, b, e, ppl, base=10.0):
    return {"key": key, "bytes": b, "energy": e, "ppl": ppl, "ppl_increase": ppl / base - 1}


POINTS = [_pt("a", 100, 9.0, 12.0), _pt("b", 80, 7.0, 13.0), _pt("c", 90, 8.0, 14.0),  # c dominated by b
          _pt("d", 60, 8.5, 20.0), _pt("e", 120, 6.0, 11.0), _pt("f", 60, 9.5, 25.0)]  # f dominated by d


def test_frontier_on_synthetic_points():
    assert [p["key"] for p in frontier(POINTS, "bytes")] == ["d", "b", "a", "e"]
    assert [p["key"] for p in frontier(POINTS, "energy")] == ["e"]
    front = frontier(POINTS, "bytes")
    for p in POINTS:  # every point off the frontier is dominated by one on it
        if p not in front:
            assert any(q["bytes"] <= p["bytes"] and q["ppl"] <= p["ppl"] for q in front)


def test_pick_best_and_nearest():
    assert pick_best(POINTS, max_bytes=95)["key"] == "b"
    assert pick_best(POINTS, max_bytes=95, max_energy=7.5)["key"] == "b"
    assert pick_best(POINTS, max_ppl_increase=0.35)["key"] == "b"  # smallest within +35%
    assert pick_best(POINTS, max_energy=8.6)["key"] == "e"  # lowest ppl within the energy budget
    with pytest.raises(ConfigError, match=r"no sweep point meets bytes <= 50; nearest: d .*; f .*; b "):
        pick_best(POINTS, max_bytes=50)


@pytest.mark.parametrize("ratios,tols,msg", [
    ("", "0.01", "empty grid"), ("0,1", "0.01", "--ratios: 1 is outside [0, 1)"), ("-0.1", "0.01", "outside [0, 1)"),
    ("0", "0", "--tolerances: 0 is outside (0, 1)"), ("0", "1.5", "outside (0, 1)"), ("0,x", "0.1", "not a comma-separated"),
])
def test_grid_bad_input(ratios, tols, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        build_grid(parse_floats(ratios, "--ratios"), parse_floats(tols, "--tolerances"), ["rtn"])


def test_grid_points():
    pts = build_grid([0.0, 0.25], [0.01, 0.1], ["rtn", "gptq"])
    assert len(pts) == 8 and pts[0].key == "r0-rtn-t0.01" and len({p.key for p in pts}) == 8


def _sweep(model, out, *extra):
    args = ["-q", "sweep", str(model), "-o", str(out), "--ratios", "0,0.25", "--tolerances", "0.01,0.2", "--weight-methods", "rtn",
            "--windows", "2", "--seqlen", "64", "--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "4",
            "--cal-seqlen", "128", "--max-evals", "3", "--group-size", "64", "--format", "json", "--backend", "reference", *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_sweep_end_to_end_and_resume(tiny_hf_dir, data_dir, tmp_path):
    out = tmp_path / "sw"
    res = _sweep(tiny_hf_dir, out, "--data-dir", str(data_dir))
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["reused_points"] == 0 and len(doc["points"]) == 4
    assert json.loads((out / MARKER).read_text())["model"] == str(tiny_hf_dir)
    assert doc == json.loads((out / "sweep.json").read_text())
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "sliced").iterdir() if p.is_dir()) == ["r0.25"]  # one slicing per ratio
    for p in doc["points"]:
        size = (out / "artifacts" / p["key"] / "model.safetensors").stat().st_size
        assert p["bytes"] == size and p["ppl"] > 1 and len(p["tuple"]) == 4
        assert p["ppl_increase"] == pytest.approx(p["ppl"] / doc["base_ppl"] - 1)
    assert set(doc["frontier_bytes"]) <= {p["key"] for p in doc["points"]} and doc["frontier_bytes"]
    sliced = [p for p in doc["points"] if p["ratio"] == 0.25]
    dense = [p for p in doc["points"] if p["ratio"] == 0]
    assert all(s["energy"] < d["energy"] for s in sliced for d in dense if s["tuple"] == d["tuple"])
    # resume: nothing recomputed, same numbers
    stamp = (out / "points" / "r0-rtn-t0.01.json").stat().st_mtime_ns
    res = _sweep(tiny_hf_dir, out, "--data-dir", str(data_dir), "--max-bytes", "1e9", "--write-best", str(tmp_path / "best"))
    assert res.exit_code == 0, res.stderr
    doc2 = json.loads(res.stdout)
    assert doc2["reused_points"] == 4 and (out / "points" / "r0-rtn-t0.01.json").stat().st_mtime_ns == stamp
    assert [p["ppl"] for p in doc2["points"]] == [p["ppl"] for p in doc["points"]]
    best = min(doc2["points"], key=lambda p: (p["ppl"], p["bytes"]))
    assert doc2["best"] == best["key"]
    assert (tmp_path / "best" / "model.safetensors").read_bytes() == (out / "artifacts" / best["key"] / "model.safetensors").read_bytes()
    # the same target again: refused without --overwrite, replaced with it; a user's folder never
    again = ("--data-dir", str(data_dir), "--max-bytes", "1e9", "--write-best", str(tmp_path / "best"))
    res = _sweep(tiny_hf_dir, out, *again)
    assert res.exit_code == 2 and "--write-best: output directory" in res.stderr and "existing artifact" in res.stderr
    assert _sweep(tiny_hf_dir, out, *again, "--overwrite").exit_code == 0
    assert (tmp_path / "best" / "model.safetensors").read_bytes() == (out / "artifacts" / best["key"] / "model.safetensors").read_bytes()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    res = _sweep(tiny_hf_dir, out, *again[:-1], str(tmp_path / "mine"), "--overwrite")
    assert res.exit_code == 2 and "is not an andactl artifact" in res.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    # a budget nobody meets: one line naming the nearest points, non-zero exit, nothing final written
    res = _sweep(tiny_hf_dir, out, "--data-dir", str(data_dir), "--max-bytes", "10", "--write-best", str(tmp_path / "none"))
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "no sweep point meets bytes <= 10; nearest:" in lines[0]
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("extra,msg", [
    (["--ratios", "0,1.2"], "--ratios: 1.2 is outside [0, 1)"),
    (["--tolerances", "0"], "--tolerances: 0 is outside (0, 1)"),
    (["--ratios", ","], "empty grid"),
    (["--storage-dtype", "int3"], "unknown storage dtype 'int3'"),
    (["--write-best", "x"], "--write-best needs a budget"),
])
def test_sweep_bad_input(tiny_hf_dir, tmp_path, extra, msg):
    res = CliRunner().invoke(cli, ["sweep", str(tiny_hf_dir), "-o", str(tmp_path / "sw"), *extra])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and msg in lines[0]
    assert not (tmp_path / "sw").exists()


def test_sweep_checks_every_input_before_any_work(tiny_hf_dir, data_dir, tmp_path):
    """Inputs a point would only meet later (a pass option, the source already quantized, a length
    past the model's context, missing data) fail in one line before DIR is created or weights are read."""
    art = tmp_path / "art"  # a packed artifact as andactl writes it (it records what it provides)
    res = CliRunner().invoke(cli, ["quantize", str(tiny_hf_dir), "--weight-method", "rtn", "--bits", "8", "8", "8", "8",
                                   "--cal-data", "ptb", "--cal-split", "validation", "--cal-seqlen", "64", "-o", str(art)])
    assert res.exit_code == 0, res.stderr
    empty, partial = tmp_path / "nodata", tmp_path / "ptb-only"
    empty.mkdir()
    partial.mkdir()
    (partial / "ptb").symlink_to(data_dir / "ptb")
    cases = [
        ([str(tiny_hf_dir), "--group-size", "63"], "INT4 group_size must be a positive multiple of 64"),
        ([str(tiny_hf_dir), "--seqlen", "1000000"], "--seqlen 1000000 exceeds the model's context length"),
        ([str(tiny_hf_dir), "--ratios", "0.25", "--recover", "kd", "--cal-seqlen", "1000000"],
         "--cal-seqlen 1000000 exceeds the model's context length"),
        ([str(tiny_hf_dir), "--cal-data", "piqa"], "unknown dataset 'piqa'"),
        ([str(tiny_hf_dir), "--data-dir", str(empty)], f"in data dir {empty}"),
        ([str(tiny_hf_dir), "--ratios", "0", "--cal-data", "ptb", "--cal-split", "validation", "--data-dir", str(partial)],
         "wikitext2/test: none of"),
        ([str(art), "--ratios", "0"], "pass 'quantize_weights' (step 1) cannot run after int4_weights, packed"),
        ([str(art), "--ratios", "0.25"], "pass 'rotate' (step 2) cannot run after"),
    ]
    for args, msg in cases:
        model, *options = args
        res = CliRunner().invoke(cli, ["sweep", model, "-o", str(tmp_path / "sw"), "--seqlen", "64", "--cal-seqlen", "64",
                                       *options])
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and msg in lines[0], (args, res.stderr)
        assert not (tmp_path / "sw").exists(), args


def test_grid_recovery_axis_only_for_sliced_models():
    pts = build_grid([0.0, 0.25], [0.01], ["rtn"], ["none", "kd"])
    assert [p.key for p in pts] == ["r0-rtn-t0.01", "r0.25-rtn-t0.01", "r0.25-kd-rtn-t0.01"]
    with pytest.raises(ConfigError, match="--recover: unknown recovery 'qat'"):
        build_grid([0.25], [0.01], ["rtn"], ["qat"])


def test_sweep_with_recovery_and_compact_options(tiny_hf_dir, data_dir, tmp_path):
    import shutil

    model = tmp_path / "tiny-512"  # recover's default 256-token sequences need a context of 256 (the tiny one has 128)
    shutil.copytree(tiny_hf_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 512}))
    out = tmp_path / "sw"
    res = _sweep(model, out, "--data-dir", str(data_dir), "--ratios", "0.25", "--tolerances", "0.2",
                 "--recover", "none,kd,full", "--recover-steps", "2", "--shortcuts", "int8", "--head", "int4",
                 "--table-group", "32", "--search-loss", "ppl")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [p["key"] for p in doc["points"]] == ["r0.25-rtn-t0.2", "r0.25-kd-rtn-t0.2", "r0.25-full-rtn-t0.2"]
    assert sorted(p.name for p in (out / "sliced").iterdir() if p.is_dir()) == ["r0.25", "r0.25-full", "r0.25-kd"]
    steps = {name: yaml.safe_load((out / "sliced" / name / "recipe.yaml").read_text())["passes"][-1]
             for name in ("r0.25-kd", "r0.25-full")}
    assert steps["r0.25-kd"]["pass"] == steps["r0.25-full"]["pass"] == "recover"
    assert (steps["r0.25-kd"]["method"], steps["r0.25-kd"]["full"]) == ("kd", False)
    assert (steps["r0.25-full"]["method"], steps["r0.25-full"]["full"]) == ("kd", True)
    for p in doc["points"]:
        settings = json.loads((out / "points" / f"{p['key']}.json").read_text())["settings"]
        assert p["search_loss"] == "ppl" and settings["shortcuts"] == "int8" and settings["table_group"] == 32
        art = out / "artifacts" / p["key"] / "model.safetensors"
        assert p["bytes"] == art.stat().st_size
        from safetensors import safe_open

        with safe_open(str(art), framework="pt") as f:
            shortcuts = [k for k in f.keys() if "shortcut" in k]
        assert shortcuts and all(k.endswith(("shortcut_int8", "shortcut_int8_scale")) for k in shortcuts)  # --shortcuts int8
    recovered = json.loads((out / "sliced" / "r0.25-kd" / "report.json").read_text())
    assert "recover" in [s.get("pass") or s.get("name") for s in recovered["passes"]]
    plain = json.loads((out / "sliced" / "r0.25" / "report.json").read_text())
    assert "recover" not in [s.get("pass") or s.get("name") for s in plain["passes"]]


def _tiny_artifact(path):
    from tiny_models import tiny_model
    from tiny_tokenizer import char_tokenizer

    from andactl.context import PassContext
    from andactl.formats.artifact import save_artifact
    from andactl.manager import PassManager
    from andactl.models.adapters import get_adapter

    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64},
                             {"pass": "keep_activations"}, {"pass": "pack"}]).run(ctx)
    return save_artifact(path, model, char_tokenizer(), {}, records=ctx.records)


def test_sweep_never_writes_into_a_users_folder_or_an_artifact(tiny_hf_dir, tmp_path):
    """A non-empty folder that no sweep wrote (a user's files, an andactl artifact) is refused in one
    line before any work, and left as it was; empty, new and earlier sweep directories are taken."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    res = CliRunner().invoke(cli, ["sweep", str(tiny_hf_dir), "-o", str(mine), "--ratios", "0"])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "is not empty and is not a sweep directory" in lines[0]
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    art = _tiny_artifact(tmp_path / "art")
    before = sorted(p.name for p in art.iterdir())
    res = CliRunner().invoke(cli, ["sweep", str(tiny_hf_dir), "-o", str(art), "--ratios", "0"])
    assert res.exit_code == 2 and "is not empty and is an andactl artifact" in res.stderr
    assert sorted(p.name for p in art.iterdir()) == before
    for sign in (MARKER, "sweep.json", "points/base.json"):  # this andactl's and earlier sweeps' directories
        d = tmp_path / sign.replace("/", "_")
        (d / sign).parent.mkdir(parents=True)
        (d / sign).write_text("{}")
        assert check_sweep_dir(d) == d.resolve()
    (tmp_path / "empty").mkdir()
    assert check_sweep_dir(tmp_path / "empty") == (tmp_path / "empty").resolve()
    assert check_sweep_dir(tmp_path / "new") == (tmp_path / "new").resolve() and not (tmp_path / "new").exists()
