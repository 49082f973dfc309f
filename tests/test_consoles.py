"""What andactl prints on stdout is never cut short: not to a pipe, not in a narrow terminal."""
from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table

from andactl.cli.eval_cmd import human_results
from andactl.consoles import stdout_console

NAMES = [f"/some/long/folder/of/artifacts/model_number_{i}_sliced_recovered_packed" for i in range(7)]


def _eval_doc() -> dict:
    return {"models": [{"model": n, "dtype": "bfloat16", "backend": "cpp",
                        "results": {"wikitext2": {"ppl": 123.456789 + i, "windows": 4, "total_windows": 595,
                                                  "seqlen": 512, "seconds": 1.0},
                                    "piqa": {"acc": 0.61234, "acc_stderr": 0.02178, "acc_norm": 0.62351}}} for i, n in enumerate(NAMES)]}


def test_eval_table_to_a_pipe_keeps_every_number_and_name(capsys):
    human_results(_eval_doc())
    out = capsys.readouterr().out
    assert "…" not in out
    for i, n in enumerate(NAMES):  # one row per model, its full name and its figures
        row = next(line for line in out.splitlines() if n in line)
        assert f"{123.456789 + i:.3f}" in row and "61.23 ± 2.18" in row and "62.35" in row
        assert "62.35 ±" not in row  # no standard error given, none shown
    header = next(line for line in out.splitlines() if "model" in line)
    assert "wikitext2 ppl" in header and "piqa acc %" in header and "piqa acc_norm %" in header


def test_narrow_terminal_folds_cells_instead_of_cutting_them(monkeypatch):
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    monkeypatch.setenv("COLUMNS", "40")
    console = stdout_console()
    assert console.width == 40
    t = Table()
    for c in ("a", "b", "c"):
        t.add_column(c)
    t.add_row("x" * 30, "1234567890.123456", "y" * 25)
    with console.capture() as cap:
        console.print(t)
    out = cap.get()
    assert "…" not in out
    cells = ["".join(re.findall(r"│ *([^│ ]*) *", line)[k] for line in out.splitlines() if line.startswith("│"))
             for k in range(3)]
    assert cells == ["x" * 30, "1234567890.123456", "y" * 25]


def test_search_line_gives_the_loss_in_percent_with_its_kind(capsys):
    from andactl.cli.run_cmd import _human_summary

    _human_summary({"model": "m", "passes": [], "search": {
        "budget": "energy", "tolerance": 0.01, "tuple": [6, 6, 6, 5], "evaluations": 6, "loss": 0.00610214857144209,
        "loss_kind": "kl", "reduction_vs_fp16": {"energy": 2.017}}})
    out = capsys.readouterr().out
    assert ("search (energy budget): [6, 6, 6, 5] after 6 evaluations, loss +0.61% within the 1% tolerance "
            "(kl against W4A16 on the calibration text)") in out
    assert "energy 2.02x" in out


def test_recovery_line_gives_the_held_out_loss_before_and_after(capsys):
    from andactl.cli.run_cmd import _human_summary

    _human_summary({"model": "m", "passes": [{"pass": "recover", "seconds": 1.0, "result": {
        "method": "kd", "loss": "KL(teacher || student)", "steps": 6, "held_out_before": 0.002292,
        "held_out_after": 0.001914}}]})
    out = capsys.readouterr().out
    assert "recover: held-out KL(teacher || student) 0.002292 -> 0.001914 (-16.5%) after 6 steps" in out


def test_an_ascii_stdout_gets_ascii_signs(monkeypatch):
    # PYTHONIOENCODING=ascii: rich draws ASCII boxes; the cells must not need "±" or "—" either
    import io
    import sys

    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    doc = _eval_doc()
    doc["models"][0]["results"]["piqa"].pop("acc_norm")
    human_results(doc)
    sys.stdout.flush()
    out = raw.getvalue().decode("ascii")
    assert "61.23 +/- 2.18" in out and re.search(r"\|\s+-\s+\|", out), out  # a missing value: "-"


def test_a_run_with_an_ascii_stdout_ends_well(tiny_hf_dir, data_dir, tmp_path):
    # the summary's cut results used to end it in UnicodeEncodeError, after the artifact was written
    from click.testing import CliRunner

    from andactl.cli.main import cli

    res = CliRunner(charset="ascii").invoke(cli, [
        "slice", str(tiny_hf_dir), "--ratio", "0.25", "-o", str(tmp_path / "s"), "--cal-data", "ptb",
        "--cal-split", "validation", "--cal-samples", "4", "--cal-seqlen", "128", "--data-dir", data_dir])
    assert res.exit_code == 0, res.stderr
    assert ", ..." in res.stdout and "artifact: " in res.stdout
