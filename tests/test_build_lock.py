"""kernels/build: extension builds of one directory are serialized across processes (build_lock),
torch's lock file left by a killed build no longer makes every later build wait forever, and a process
started with stdout closed still loads the extension (standard_streams)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from andactl.kernels import build

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + "/.andactl-build.lock", os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[1] + "/lock", "w").close()   # torch's baton of the build in progress
print("held", flush=True)
time.sleep(1.0)
os.remove(sys.argv[1] + "/lock")             # what torch does when its build ends
"""


def test_killed_builds_baton_is_removed(tmp_path, caplog):
    (tmp_path / build.TORCH_BATON).write_text("")  # a build killed by SIGKILL left it; no process holds the flock
    with caplog.at_level(logging.WARNING, logger="andactl"), build.build_lock(tmp_path):
        assert not (tmp_path / build.TORCH_BATON).exists()
    assert f"removing {tmp_path / build.TORCH_BATON}, left by an extension build that was killed" in caplog.text


def test_a_build_in_progress_is_waited_for_not_broken(tmp_path, caplog):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        with caplog.at_level(logging.INFO, logger="andactl"), build.build_lock(tmp_path):
            waited = time.perf_counter() - t0
        assert waited > 0.5, waited  # the holder kept it for 1 s
        assert "waiting for another andactl process that is building the C++ extension" in caplog.text
        assert "removing" not in caplog.text  # its baton was its own, removed by itself
    finally:
        holder.wait(timeout=10)
    assert holder.returncode == 0


CLOSED_STDOUT = """
import sys
from andactl.kernels import build
res = build.load(cuda=False)
sys.stderr.write("ok" if res.ok else "failed: " + res.reason)
"""


def test_the_extension_loads_with_stdout_closed():
    # `andactl ... >&-`: Python starts with sys.stdout = None; torch's loader flushed it, the load
    # failed and the run fell back to the reference kernels
    here = build.load(cuda=False)
    if not here.ok:
        pytest.skip(f"C++ extension did not build here: {here.reason}")
    child = subprocess.run([sys.executable, "-c", CLOSED_STDOUT], stderr=subprocess.PIPE, text=True, timeout=600,
                           preexec_fn=lambda: os.close(1))
    assert child.stderr.strip().endswith("ok"), child.stderr[-500:]


def test_standard_streams_stand_in_for_none_and_are_restored(monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    with build.standard_streams():
        sys.stdout.write("x")
        sys.stdout.flush()
    assert sys.stdout is None
