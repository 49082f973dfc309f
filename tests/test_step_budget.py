"""``recover --minutes``: the step count a wall-time budget holds (andactl/step_budget.py)."""
from __future__ import annotations

import hashlib
import json
import re

import pytest
from cli_helpers import assert_error_line, invoke_cli
from test_recover import sliced  # noqa: F401  (the module's fixture: a tiny llama sliced by 25%)

from andactl.errors import ConfigError
from andactl.step_budget import TIMING_MARGIN, steps_within, timed_steps_within

FAST = ["--seqlen", "32", "--batch-size", "2", "--held-out", "2", "--eval-every", "2"]
RATES = {"run": 2e8, "float32": 2e8, "float64": 1e8}  # slow enough that a few tiny steps fill a minute


@pytest.mark.parametrize("held_every", [0, 10])
def test_steps_within_is_the_most_steps_the_estimate_fits(held_every):
    """A linear estimate, and one that jumps every ``held_every`` steps (held-out passes): the count
    fits the budget and one more step does not."""
    def est(n):
        return 30.0 + 2.5 * n + (5.0 * (n // held_every) if held_every else 0.0)

    for budget in (33.0, 300.0, 301.0, 7777.0):
        b = steps_within(budget, est)
        assert est(b.steps) <= budget < est(b.steps + 1), (budget, b)
    b = steps_within(300.0, est)
    assert (b.fixed, b.per_step) == pytest.approx((30.0, 3.0 if held_every else 2.5))


def test_a_budget_without_a_step_is_refused():
    with pytest.raises(ConfigError, match=r"--minutes 0.5 holds no training step on this machine: the run is "
                                          r"estimated at 0.7 min before its first step and 2.5 s per step"):
        steps_within(30.0, lambda n: 40.0 + 2.5 * n)


@pytest.mark.parametrize("args,text", [
    (["--minutes", "0"], "Invalid value for '--minutes': 0.0 is not in the range x>0"),
    (["--minutes", "5", "--steps", "3"], "give --steps or --minutes, not both"),
    (["--minutes", "1e-4"], "--minutes 0.0001 holds no training step on this machine"),
])
def test_bad_minutes_one_line_nothing_written(sliced, data_dir, tmp_path, args, text):  # noqa: F811
    assert_error_line(invoke_cli("recover", sliced, "-o", tmp_path / "out", *args, *FAST, "--data-dir", data_dir), text)
    assert not (tmp_path / "out").exists()


def _dry_run(sliced, data_dir, tmp_path, steps, *extra) -> dict:  # noqa: F811
    out = invoke_cli("recover", sliced, "--full", "-o", tmp_path / "d", "--steps", str(steps), *FAST, *extra,
                     "--data-dir", data_dir, "--dry-run", "--format", "json")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)


def _dry_seconds(sliced, data_dir, tmp_path, steps, *extra) -> float:  # noqa: F811
    return _dry_run(sliced, data_dir, tmp_path, steps, *extra)["seconds"]


def _training_row(report: dict) -> float:
    return next(r["seconds"] for r in report["passes"] if r["pass"] == "recover: training")


def test_minutes_run_is_the_steps_run_it_names(sliced, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """--minutes M trains the N steps it logs; N is the most whose --dry-run estimate, its training
    row scaled by the timed step over the estimated one, fits M minutes less the margin and the
    seconds spent before (somewhere between none and the whole command's), and the artifact is the
    one --steps N writes, byte for byte."""
    import time

    import andactl.dry_run.rates as dr
    import andactl.step_timing as st

    monkeypatch.setattr(dr, "probed_rates", lambda dtype: dict(RATES))
    monkeypatch.setattr(dr, "cpu_flops", lambda dtype: dict(RATES))  # the --steps dry runs below: the same rates
    never = ("--eval-every", "10100")
    per_step = (_training_row(_dry_run(sliced, data_dir, tmp_path, 1010, *never))
                - _training_row(_dry_run(sliced, data_dir, tmp_path, 10, *never))) / 1000
    measured = 1.7 * per_step  # the step as if timed here: the estimate read 1.7x low
    monkeypatch.setattr(st, "timed_step_seconds", lambda *a: measured)
    minutes = 0.5
    t0 = time.perf_counter()
    res = invoke_cli("recover", sliced, "--full", "-o", tmp_path / "m", "--minutes", str(minutes), *FAST,
                     "--data-dir", data_dir)
    took = time.perf_counter() - t0
    assert res.exit_code == 0, res.stderr
    line = " ".join(res.stderr.split())
    n = int(re.search(r"--minutes 0.5: (\d+) steps fit on this machine \(one step timed at", line).group(1))
    assert "1.70x the estimate's" in line, line
    assert 2 <= n <= 200, n

    def scaled(steps):
        report = _dry_run(sliced, data_dir, tmp_path, steps)
        return report["seconds"] + 0.7 * _training_row(report)

    left = 60 * minutes * (1 - TIMING_MARGIN)
    assert scaled(n) <= left and scaled(n + 1) > left - took
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["andactl"]["provenance"]["recovery"]["steps"] == n
    res = invoke_cli("recover", sliced, "--full", "-o", tmp_path / "s", "--steps", str(n), *FAST, "--data-dir", data_dir)
    assert res.exit_code == 0, res.stderr

    def digest(folder):
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    assert digest(tmp_path / "m") == digest(tmp_path / "s")


def test_a_dry_run_with_minutes_times_no_step(sliced, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """--dry-run --minutes M: the estimate alone (no child loads the model); its count is the most
    whose estimate fits M minutes."""
    import andactl.dry_run.rates as dr
    import andactl.step_timing as st

    monkeypatch.setattr(dr, "probed_rates", lambda dtype: dict(RATES))
    monkeypatch.setattr(dr, "cpu_flops", lambda dtype: dict(RATES))

    def never(*a):
        raise AssertionError("a dry run timed a step")

    monkeypatch.setattr(st, "timed_step_seconds", never)
    res = invoke_cli("recover", sliced, "--full", "-o", tmp_path / "m", "--minutes", "0.5", *FAST, "--data-dir", data_dir,
                     "--dry-run", "--format", "json")
    assert res.exit_code == 0, res.stderr
    n = int(re.search(r"--minutes 0.5: (\d+) steps fit on this machine \(estimated", " ".join(res.stderr.split())).group(1))
    assert _dry_seconds(sliced, data_dir, tmp_path, n) <= 30 < _dry_seconds(sliced, data_dir, tmp_path, n + 1)
    assert not (tmp_path / "m").exists()


def test_a_run_estimated_over_memory_times_no_step(sliced, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """A run estimated over the memory available is not timed (the timing would hold as much): one
    warning, and the estimate alone decides."""
    import andactl.dry_run.memory as memory
    import andactl.dry_run.rates as dr
    import andactl.step_timing as st

    monkeypatch.setattr(dr, "probed_rates", lambda dtype: dict(RATES))
    monkeypatch.setattr(memory, "over_memory_warning", lambda recipe, opts: "estimated peak host RAM 99 GB")

    def never(*a):
        raise AssertionError("a step was timed")

    monkeypatch.setattr(st, "timed_step_seconds", never)
    res = invoke_cli("recover", sliced, "--full", "-o", tmp_path / "m", "--minutes", "0.5", *FAST, "--data-dir", data_dir)
    assert res.exit_code == 0, res.stderr
    line = " ".join(res.stderr.split())
    assert "no step is timed (the run is estimated over the memory available" in line, line
    assert re.search(r"--minutes 0.5: \d+ steps fit on this machine \(estimated", line), line


def test_timed_steps_within_scales_the_training_row_and_keeps_the_margin():
    """Only the training row (2 s per step + 1 s of the 2.5 s per step + 30 s) is scaled by the
    timed step over the estimated one; the margin and the seconds spent come off the budget."""
    def est(n):
        return 30.0 + 2.5 * n

    def training(n):
        return 1.0 + 2.0 * n

    for scale_by, spent in ((0.8, 0.0), (1.25, 40.0), (1.0, 299.0)):
        b = timed_steps_within(1200.0, spent, 2.0 * scale_by, 2.0, est, training)
        left = 1200.0 * (1 - TIMING_MARGIN) - spent

        def scaled(n):
            return est(n) + (scale_by - 1) * training(n)

        assert scaled(b.steps) <= left < scaled(b.steps + 1), (scale_by, spent, b)
        assert (b.scale, b.spent, b.step_seconds, b.seconds) == pytest.approx((scale_by, spent, 2.0 * scale_by, 1200.0))
        assert (b.fixed, b.per_step) == pytest.approx((30.0 + (scale_by - 1), 2.5 + 2.0 * (scale_by - 1)))
    # the message says where the budget went: a budget the command's start and the timing used up
    # read "0.0 min before its first step and 0.0 s per step" on a tiny model, with no step held
    with pytest.raises(ConfigError, match=r"--minutes 1 holds no training step on this machine: .* s per step, and 50 s "
                                          r"of the 60 s are spent already \(the command's start and the timed steps\) "
                                          r"with 10% kept in reserve \(see --dry-run\)$"):
        timed_steps_within(60.0, 50.0, 2.0, 2.0, est, training)


def test_a_step_timed_in_a_child_process(sliced):  # noqa: F811
    """The child loads the run's model and times its steps (a positive median); with teacher_topk
    there is nothing to time here (None); a child that fails gives None and one warning."""
    import logging

    from andactl.step_timing import timed_step_seconds

    params = {"method": "kd", "full": True, "seqlen": 16, "batch_size": 2}
    seconds = timed_step_seconds(str(sliced), params, str(sliced), "float32", "cpu", 0)
    assert isinstance(seconds, float) and 0 < seconds < 60
    assert timed_step_seconds(str(sliced), {**params, "teacher_topk": 4}, str(sliced), "float32", "cpu", 0) is None
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("andactl").addHandler(handler)
    try:
        assert timed_step_seconds(str(sliced / "missing"), params, None, "float32", "cpu", 0) is None
    finally:
        logging.getLogger("andactl").removeHandler(handler)
    assert any("timing a step in a child process failed (exit 1:" in r.getMessage() for r in records), records


@pytest.mark.parametrize("load,warned", [(0.2, False), (1.9, True)])
def test_minutes_on_a_busy_machine_warns(sliced, data_dir, tmp_path, monkeypatch, load, warned):  # noqa: F811
    """The budget's probe reads slow beside other work: one warning says so, and the run goes on."""
    import andactl.dry_run.rates as dr

    monkeypatch.setattr(dr, "probed_rates", lambda dtype: dict(RATES))
    monkeypatch.setattr(dr.os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(dr.os, "cpu_count", lambda: 2)
    res = invoke_cli("recover", sliced, "--full", "-o", tmp_path / "m", "--minutes", "0.5", *FAST, "--data-dir", data_dir,
                     "--dry-run", "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert ("the CPUs are busy (1-minute load 1.9 on 2 CPUs)" in res.stderr) is warned, res.stderr
    assert json.loads(res.stdout)["seconds"] <= 30


def test_a_failed_probe_is_one_line(monkeypatch):
    """The child process that probes the rates fails: one ConfigError naming its last stderr line."""
    import subprocess

    import andactl.dry_run.rates as dr

    def failed(*a, **k):
        return subprocess.CompletedProcess(a[0], 1, stdout="", stderr="Traceback ...\nImportError: no torch\n")

    monkeypatch.setattr(subprocess, "run", failed)
    with pytest.raises(ConfigError, match=r"could not probe this CPU's rates in a child process \(exit 1: "
                                          r"ImportError: no torch\)"):
        dr.probed_rates("float32")


def test_recover_trains_at_the_cpu_kinds_autocast_shares(sliced, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """Where training runs under bf16 autocast, the estimate's training row runs at AUTOCAST_SHARES of
    the bf16 probe: the AMX pair where AMX tiles are expected, AVX512-BF16's elsewhere; shares twice
    as large give half the row."""
    import andactl.dry_run.rates as dr
    from andactl.kernels import split_gemm

    monkeypatch.setattr(dr, "cpu_flops", lambda dtype: {**RATES, "autocast": 1e8})
    monkeypatch.setattr(dr, "AUTOCAST_SHARES", {"amx": (0.2, 0.5), "avx512_bf16": (0.4, 1.0)})
    rows = {}
    for tiles in (True, False):
        monkeypatch.setattr(split_gemm, "tiles_expected", lambda t=tiles: t)
        assert dr.autocast_shares() == dr.AUTOCAST_SHARES["amx" if tiles else "avx512_bf16"]
        rows[tiles] = _training_row(_dry_run(sliced, data_dir, tmp_path, 20))
    assert rows[False] > 10 and rows[True] == pytest.approx(2 * rows[False], rel=5e-3), rows


def test_process_age_counts_the_interpreter_start():
    """process_age_seconds reads the process's start from /proc: a child that slept 1 s before asking
    is at least 1 s old (and not absurdly older)."""
    import subprocess
    import sys

    code = "import time; time.sleep(1.0); from andactl.step_budget import process_age_seconds as a; print(a())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 1.0 <= float(out.stdout) < 60.0, out.stdout


def test_the_entry_point_counts_from_the_process_start(monkeypatch):
    """``andactl`` hands its commands the process's start as ``obj["started"]``, or the call's time
    when the process is older than a start-up takes."""
    import time

    import andactl.cli.main as entry
    import andactl.step_budget as sb

    got = {}
    monkeypatch.setattr(sb, "process_age_seconds", lambda: 42.0)
    monkeypatch.setattr(entry, "cli", lambda **kw: got.update(kw))
    before = time.perf_counter()
    entry.main()
    assert got["prog_name"] == "andactl"
    assert before - 42.0 <= got["obj"]["started"] <= time.perf_counter() - 42.0
    # older than any start-up (main() called from a long-lived interpreter): counted from the call
    monkeypatch.setattr(sb, "process_age_seconds", lambda: sb.STARTUP_MAX_SECONDS + 1.0)
    before = time.perf_counter()
    entry.main()
    assert before <= got["obj"]["started"] <= time.perf_counter()


def test_minutes_count_the_seconds_before_the_command(sliced, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """A process that started 100 s before ``recover --minutes 0.5`` has no budget left: one line,
    nothing written; the same command started now trains (test_minutes_run_is_the_steps_run_it_names)."""
    import time

    from click.testing import CliRunner

    import andactl.dry_run.rates as dr
    import andactl.step_timing as st
    from andactl.cli.main import cli

    monkeypatch.setattr(dr, "probed_rates", lambda dtype: dict(RATES))
    monkeypatch.setattr(st, "timed_step_seconds", lambda *a: 0.01)
    args = ["recover", sliced, "--full", "-o", tmp_path / "m", "--minutes", "0.5", *FAST, "--data-dir", data_dir]
    res = CliRunner().invoke(cli, [str(a) for a in args], obj={"started": time.perf_counter() - 100.0})
    assert_error_line(res, "--minutes 0.5 holds no training step on this machine")
    assert not (tmp_path / "m").exists()
