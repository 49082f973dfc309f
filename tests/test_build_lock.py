"""kernels/build.build_lock: extension builds of one directory are serialized across processes,
and torch's lock file left by a killed build no longer makes every later build wait forever."""
from __future__ import annotations

import logging
import subprocess
import sys
import time

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
