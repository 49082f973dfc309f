"""Pass instruments (after TVM's ``ir/instrument.py``): hooks called around every pass."""
from __future__ import annotations

import resource
import threading
import time
from pathlib import Path


def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; falls back to peak RSS)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


MB = 10**6  # the megabyte of every "MB" andactl prints and of every ``*_mb`` field it writes (GB: 10**9)


def megabytes(n_bytes: float) -> float:
    """``n_bytes`` in MB (10**6 bytes, the unit the label says), to 0.1 MB."""
    return round(n_bytes / MB, 1)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Instrument:
    """Base instrument: all hooks are no-ops."""

    def enter_pass(self, p, ctx) -> None: ...
    def exit_pass(self, p, ctx, record: dict) -> None: ...


class Timing(Instrument):
    """Records wall seconds of each pass in its record as ``seconds``."""

    def enter_pass(self, p, ctx):
        self._t0 = time.perf_counter()

    def exit_pass(self, p, ctx, record):
        record["seconds"] = round(time.perf_counter() - self._t0, 3)


class PeakMemory(Instrument):
    """Samples RSS every 50 ms during a pass; records the pass's peak as ``peak_rss_mb``."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval

    def _sample(self):
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, current_rss_bytes())

    def enter_pass(self, p, ctx):
        self._peak = current_rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def exit_pass(self, p, ctx, record):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, current_rss_bytes())
        record["peak_rss_mb"] = megabytes(self._peak)


class LogPasses(Instrument):
    """Prints one line per pass on stderr when it starts and ends (✘ when it failed or was interrupted)."""

    def __init__(self, console):
        self.console = console

    def enter_pass(self, p, ctx):
        self.console.print(f"[bold]▶ {p.name}[/bold]")

    def exit_pass(self, p, ctx, record):
        extra = f", peak RSS {record['peak_rss_mb']} MB" if "peak_rss_mb" in record else ""
        if record.get("status"):  # failed or interrupted: never a green tick
            self.console.print(f"[red]✘ {p.name}[/red] {record['status']} after {record.get('seconds', 0):.1f}s")
            return
        self.console.print(f"[green]✔ {p.name}[/green] in {record.get('seconds', 0):.1f}s{extra}")
