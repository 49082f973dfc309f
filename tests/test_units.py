"""Every "MB" andactl prints or writes (``*_mb`` fields) is 10**6 bytes, as the label says."""
from __future__ import annotations

import collections
import re

import pytest

from andactl import instruments, preflight
from andactl.errors import ConfigError
from andactl.evaluation import throughput


def test_pass_peak_rss_is_in_megabytes(monkeypatch):
    monkeypatch.setattr(instruments, "current_rss_bytes", lambda: 3_000_000_000)
    probe = instruments.PeakMemory(interval=0.01)
    record: dict = {}
    probe.enter_pass(None, None)
    probe.exit_pass(None, None, record)
    assert record["peak_rss_mb"] == 3000.0  # not 2861.0, its size in MiB


def test_bench_peak_rss_is_vmhwm_in_megabytes():
    def hwm_kib():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

    before = hwm_kib()
    mb = throughput.peak_rss_mb()
    after = hwm_kib()
    assert before * 1024 / 1e6 <= mb <= after * 1024 / 1e6


def test_disk_refusal_names_megabytes(monkeypatch, tmp_path):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: usage(10**10, 0, 5_000_000))
    with pytest.raises(ConfigError) as err:
        preflight.check_disk(tmp_path / "o", 10_000_000)
    need = re.search(r"needs about ([0-9.]+) MB, ([0-9.]+) MB free", str(err.value))
    assert need and float(need[1]) == round(10_000_000 * preflight.DISK_MARGIN / 1e6, 1) and float(need[2]) == 5.0
