"""The consoles andactl writes through: progress and logs on stderr, data on stdout."""
from __future__ import annotations

import sys


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


UNCUT_WIDTH = 1000  # columns of stdout when it is a file or a pipe: wider than any table andactl prints


def stdout_console():
    """Console for the data andactl prints on stdout. Invariant: nothing it prints is cut short. To a
    file or a pipe a table takes its natural width (rich would squeeze it into 80 columns and end
    numbers and names in "…"); in a terminal, a cell too long for its column folds onto further lines."""
    from rich.console import Console
    from rich.table import Table

    class UncutConsole(Console):
        def print(self, *objects, **kwargs):
            for obj in objects:
                if isinstance(obj, Table):
                    for column in obj.columns:
                        column.overflow = "fold"
            super().print(*objects, **kwargs)

    console = UncutConsole(highlight=False, soft_wrap=True)
    return console if console.is_terminal else UncutConsole(highlight=False, soft_wrap=True, width=UNCUT_WIDTH)


def encodable(text: str, fallback: str) -> str:
    """``text`` where stdout's encoding can write it, else the ASCII ``fallback`` (an ASCII stdout,
    e.g. ``PYTHONIOENCODING=ascii``: rich draws its tables in ASCII there, and a cell's "±" would
    end the command in a UnicodeEncodeError)."""
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return fallback
    return text
