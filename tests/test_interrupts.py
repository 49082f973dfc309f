"""SIGINT / SIGTERM / SIGKILL at named points of a real artifact write (a subprocess running
``andactl run`` on a tiny model, paused there by ANDACTL_PAUSE_AT); then what exists."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def written(tiny_hf_dir, tmp_path_factory):
    """One uninterrupted subprocess run: (model, recipe, artifact) shared by the tests below."""
    base = tmp_path_factory.mktemp("interrupts")
    recipe = base / "r.yaml"
    recipe.write_text("- pass: fuse_norms\n")
    write(tiny_hf_dir, recipe, base / "artifact")
    return tiny_hf_dir, recipe, base / "artifact"


@pytest.fixture()
def setup(written, tmp_path):
    """(model, recipe, work) where work/out is a copy of a complete artifact."""
    model, recipe, artifact = written
    shutil.copytree(artifact, tmp_path / "work" / "out")
    return model, recipe, tmp_path / "work"


def start(model, recipe, out, stage, overwrite=True):
    env = {**os.environ, "ANDACTL_PAUSE_AT": stage, "ANDACTL_PAUSE_SECONDS": "60", "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    args = [sys.executable, "-m", "andactl", "run", str(recipe), "--model", str(model), "-o", str(out)]
    # a shell that runs jobs in the background (nohup, CI runners) starts them with SIGINT ignored,
    # and Python keeps an ignored SIGINT: give the child the default disposition, as a terminal does
    return subprocess.Popen(args + (["--overwrite"] if overwrite else []), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_paused(proc, stage, timeout=90):
    """Reads stderr until the process says it paused at ``stage``; returns the lines read."""
    lines, t0 = [], time.time()
    while time.time() - t0 < timeout:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.strip() == f"paused at {stage}":
            return lines
    proc.kill()
    raise AssertionError(f"never paused at {stage}: {''.join(lines)}")


def run_to_pause(model, recipe, out, stage, sig):
    proc = start(model, recipe, out, stage)
    before = wait_paused(proc, stage)
    proc.send_signal(sig)
    rest = proc.stderr.read()
    proc.wait(30)
    return proc.returncode, "".join(before) + rest


def write(model, recipe, out):
    """An uninterrupted run (same subprocess path) that writes ``out``."""
    proc = start(model, recipe, out, "none")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return err


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir())


def test_sigint_during_write_leaves_nothing(setup):
    model, recipe, work = setup
    out = work / "new"
    shutil.rmtree(work / "out")
    rc, err = run_to_pause(model, recipe, out, "weights_written", signal.SIGINT)
    assert rc == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: nothing was written"
    assert "Traceback" not in err
    assert siblings(out) == []


def test_sigterm_in_pass_marks_it_and_old_artifact_survives(setup):
    model, recipe, work = setup
    out = work / "out"
    before = (out / "model.safetensors").read_bytes()
    rc, err = run_to_pause(model, recipe, out, "pass:fuse_norms", signal.SIGTERM)
    assert rc == 143 and "✘ fuse_norms interrupted" in err and "✔ fuse_norms" not in err, err
    assert (out / "model.safetensors").read_bytes() == before and siblings(out) == ["out"]
    # SIGTERM just before the swap: the complete new artifact is thrown away, the old one stays
    rc, err = run_to_pause(model, recipe, out, "before_swap", signal.SIGTERM)
    assert rc == 143 and err.strip().splitlines()[-1] == "interrupted: nothing was written"
    assert (out / "model.safetensors").read_bytes() == before and siblings(out) == ["out"]


def test_sigkill_leaves_old_artifact_and_next_run_cleans_up(setup):
    model, recipe, work = setup
    out = work / "out"
    before = (out / "config.json").read_bytes()
    for stage in ("weights_written", "after_swap"):
        rc, _ = run_to_pause(model, recipe, out, stage, signal.SIGKILL)
        assert rc == -signal.SIGKILL
        assert (out / "config.json").read_bytes() == before  # old (or identical new) artifact in place
        left = [n for n in siblings(out) if n != "out"]
        assert len(left) == 1 and left[0].startswith(".out.partial-"), left
    err = write(model, recipe, out)
    assert f"removing {work / left[0]}" in err and siblings(out) == ["out"]


def test_interrupted_sweep_says_what_stays_and_resumes(tiny_hf_dir, data_dir, tmp_path):
    """Ctrl-C inside a sweep's first point: exit 130 and one line that says the sweep directory keeps
    its finished work (here the source's perplexity) and that the same command resumes; it does."""
    out = tmp_path / "sw"
    args = ["sweep", str(tiny_hf_dir), "-o", str(out), "--ratios", "0", "--tolerances", "0.2", "--weight-methods", "rtn",
            "--windows", "1", "--seqlen", "64", "--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "4",
            "--cal-seqlen", "64", "--max-evals", "2", "--backend", "reference", "--data-dir", str(data_dir), "--format", "json"]
    env = {**os.environ, "ANDACTL_PAUSE_AT": "pass:anda_search", "ANDACTL_PAUSE_SECONDS": "60", "PYTHONPATH": str(ROOT),
           "COLUMNS": "400"}
    proc = subprocess.Popen([sys.executable, "-m", "andactl", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_paused(proc, "pass:anda_search")
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    proc.wait(30)
    assert proc.returncode == 130, rest
    assert rest.strip().splitlines()[-1] == (f"interrupted: the finished points stay in {out}; the same command resumes "
                                             "there, the point in progress was not written")
    assert (out / "points" / "base.json").is_file() and not (out / "points" / "r0-rtn-t0.2.json").exists()
    from click.testing import CliRunner

    from andactl.cli.main import cli

    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.stderr
    assert [p["key"] for p in json.loads(res.stdout)["points"]] == ["r0-rtn-t0.2"]
