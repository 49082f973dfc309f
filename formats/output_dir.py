"""The one home for writing an artifact directory safely.

Guarantees (tested in tests/test_output_dir.py and tests/test_interrupts.py):

- ``check_output`` refuses, before any work, an output that is the empty string, the current
  directory (or one containing it), the home directory, a filesystem root, a file, or an existing
  non-empty directory that andactl did not write (an andactl artifact, or a foreign-format export
  holding ``EXPORT_RECORD``) -- even with ``--overwrite``. What andactl wrote is replaced only with
  ``--overwrite``.
- ``staged_output`` writes into a sibling ``.NAME.partial-PID-RANDOM`` directory and swaps it in
  with ``renameat2(RENAME_EXCHANGE)`` (fallback: two renames), so at every instant either the
  old or the new artifact exists at the output path (the fallback leaves one rename's gap).
  On any failure or interruption before the swap the partial directory is removed.
- Just before the swap ``check_output`` runs again: what another process put at the output path
  meanwhile (a second run's artifact, a user's folder) is never replaced without ``--overwrite``,
  and a user's folder never; without ``--overwrite`` the swap is one rename(2), which replaces an
  empty directory only.
- Leftovers of killed runs (``.NAME.partial-PID-*`` / ``.NAME.old-PID-*`` whose PID is gone) are
  removed by the next run writing to the same place, and named on stderr (the log).
- Files get normal umask permissions.

``ANDACTL_PAUSE_AT=<stage>[,<stage>...]`` makes ``pause(stage)`` print ``paused at <stage>`` on
stderr and sleep (``ANDACTL_PAUSE_SECONDS``, 30 s default) so tests can signal the process there.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from andactl.errors import ConfigError, Interrupted, WriteError, storage_error

log = logging.getLogger("andactl")

PAUSE_ENV = "ANDACTL_PAUSE_AT"
PARTIAL_TAG = ".partial-"
OLD_TAG = ".old-"
RENAME_EXCHANGE = 2
AT_FDCWD = -100
# the file andactl writes into every foreign-format export (andactl export): what it came from; it
# also marks the folder as andactl's own output, which --overwrite may replace
EXPORT_RECORD = "andactl-export.json"
# the longest temporary name is ".NAME.partial-PID-RANDOM": PIDs have at most 7 digits on Linux
TEMP_NAME_EXTRA = len(".") + len(PARTIAL_TAG) + 7 + 1 + 8


def pause(stage: str) -> None:
    """Test hook: sleeps at ``stage`` when ``$ANDACTL_PAUSE_AT`` names it; no-op otherwise."""
    stages = os.environ.get(PAUSE_ENV, "")
    if stage in stages.split(","):
        print(f"paused at {stage}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("ANDACTL_PAUSE_SECONDS", "30")))


def _is_artifact(path: Path) -> bool:
    from andactl.formats.artifact import is_artifact

    return is_artifact(path)


def _is_export(path: Path) -> bool:
    """Whether ``path`` is a foreign-format export andactl wrote (its config and its record)."""
    return (path / "config.json").is_file() and (path / EXPORT_RECORD).is_file()


def check_output(output: str | os.PathLike, overwrite: bool) -> Path:
    """The resolved output path, or ConfigError (one line) if writing there could lose data or
    would fail: see the module docstring. Touches nothing."""
    if output is None or not str(output).strip():
        raise ConfigError("output path is empty: name a new directory with -o DIR")
    out = Path(output).expanduser().resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if out == Path(out.anchor):
        raise ConfigError(f"refusing to write an artifact to the filesystem root {out}: name a new directory")
    if out == home:
        raise ConfigError(f"refusing to write an artifact over the home directory {out}: name a new directory")
    if out == cwd or out in cwd.parents:
        raise ConfigError(f"refusing to write an artifact over {out}, which contains the current directory: "
                          "name a new directory")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ConfigError(f"output {out} exists and is not a directory: name a new directory")
        if any(out.iterdir()):
            kind = "artifact" if _is_artifact(out) else "export" if _is_export(out) else None
            if kind is None:
                raise ConfigError(f"output directory {out} is not empty and is not an andactl artifact; "
                                  "andactl never replaces it (even with --overwrite): name a new directory")
            if not overwrite:
                raise ConfigError(f"output directory {out} is an existing {kind} (pass --overwrite to replace it)")
    ancestor = check_creatable(out, "output")
    try:
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    longest = len(out.name.encode()) + TEMP_NAME_EXTRA
    if longest > name_max:
        raise ConfigError(f"output name '{out.name[:40]}...' is too long: with the temporary prefix it needs "
                          f"{longest} bytes, the filesystem allows {name_max}")
    return out


def check_creatable(target: Path, what: str) -> Path:
    """The nearest existing ancestor of ``target``, or ConfigError (one line) when ``target`` could
    not be created there: that ancestor is a file, or a directory this process may not write (a
    read-only filesystem included). Touches nothing."""
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot create {what} {target}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} {target}: directory {ancestor} is not writable")
    return ancestor


def write_atomic(path: Path, content: str | bytes) -> None:
    """Writes ``content`` to ``path`` (parents created) through a temporary file and a rename, so
    ``path`` holds either its old content or the whole new one, never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(out: Path) -> list[Path]:
    """Removes ``.NAME.partial-PID-*`` and ``.NAME.old-PID-*`` siblings of ``out`` whose PID is
    gone (leftovers of killed runs), logs each, returns them. Live runs' directories are kept."""
    pattern = re.compile(re.escape(f".{out.name}") + r"\.(partial|old)-(\d+)-[0-9a-f]+$")
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        m = pattern.match(entry.name)
        if not m or int(m.group(2)) == os.getpid() or _pid_alive(int(m.group(2))):
            continue
        log.warning("removing %s, left by an earlier run (pid %s) that was killed", entry, m.group(2))
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        removed.append(entry)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, out: Path, token: str, overwrite: bool) -> Path | None:
    """Puts ``tmp`` at ``out``; returns where the old content now is (to delete), or None.
    Without ``overwrite`` it is one rename(2), which replaces nothing but an empty directory: an
    artifact another process put at ``out`` since ``check_output`` ran is never replaced (ConfigError)."""
    if not overwrite or not (out.exists() or out.is_symlink()):
        try:
            os.rename(tmp, out)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            raise ConfigError(f"{out} was created by another process while this run wrote its artifact; nothing was "
                              "replaced and this run's result was not kept (pass --overwrite to replace an artifact)") from err
        return None
    if out.is_dir() and not out.is_symlink() and _exchange(tmp, out):
        return tmp
    old = out.parent / f".{out.name}{OLD_TAG}{os.getpid()}-{token}"
    os.rename(out, old)
    os.rename(tmp, out)
    return old


def _free_mb(folder: Path) -> str:
    from andactl.instruments import megabytes

    try:
        return f"{megabytes(shutil.disk_usage(folder).free)} MB"
    except OSError:
        return "unknown"


def _check_unchanged(out: Path, overwrite: bool) -> None:
    """``check_output`` again just before the swap: another process (a second andactl run, a user)
    may have put an artifact or a folder of its own at ``out`` while this run wrote its own."""
    try:
        check_output(out, overwrite)
    except ConfigError as err:
        raise ConfigError(f"{out} changed while this run wrote its artifact ({err}); nothing was replaced and this "
                          "run's result was not kept") from err


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM wait until the block ends (the swap is never cut in half)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _settle_tree(root: Path) -> None:
    """Gives every file 0666 and every directory 0777 minus the umask (some writers, e.g.
    safetensors, create 0600 files) and flushes them to disk before the swap."""
    mask = _umask()
    for path in [*root.rglob("*"), root]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


@contextmanager
def spill_directory(output: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty temporary directory next to ``output`` for a run's spill files (streamed
    layers, calibration buffers); removed when the block ends, however it ends. Named like a
    partial artifact, so a killed run's leftover is removed by the next run to the same output."""
    out = Path(output).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    tmp = out.parent / f".{out.name}{PARTIAL_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_output(output: str | os.PathLike, overwrite: bool) -> Iterator[Path]:
    """Yields an empty temporary directory next to ``output``; when the block ends normally its
    content replaces ``output`` atomically. On an exception or signal the temporary directory is
    removed and ``output`` is left as it was."""
    out = check_output(output, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    token = secrets.token_hex(4)
    tmp = out.parent / f".{out.name}{PARTIAL_TAG}{os.getpid()}-{token}"
    tmp.mkdir()
    committed = False
    old = None
    try:
        pause("partial_created")
        yield tmp
        _settle_tree(tmp)
        pause("before_swap")
        _check_unchanged(out, overwrite)
        with _signals_deferred():
            old = _swap_in(tmp, out, token, overwrite)
            committed = True
        pause("after_swap")
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as err:
        if not committed:
            shutil.rmtree(tmp, ignore_errors=True)
            if storage_error(err):
                raise WriteError(f"cannot write the artifact at {out}: {err.strerror} ({_free_mb(out.parent)} free "
                                 "there now); nothing was written") from err
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(err, KeyboardInterrupt):
            code = getattr(err, "exit_code", 130)
            raise Interrupted(code, f"interrupted after {out} was completely written") from err
        raise
