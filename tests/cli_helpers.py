"""Running the CLI in-process and checking its one-line errors (shared by the CLI-level tests)."""
from __future__ import annotations

from click.testing import CliRunner

from andactl.cli.main import cli


def invoke_cli(*args):
    """``andactl ARGS`` in this process (arguments stringified; exceptions propagate)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_error_line(res, text: str) -> None:
    """A non-zero exit whose stderr is exactly one non-blank line, containing ``text``, no traceback."""
    assert res.exit_code != 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert text in lines[0], lines[0]
