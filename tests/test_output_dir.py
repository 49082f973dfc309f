"""formats/output_dir.py: which outputs are refused, atomic replacement, stale leftovers, perms."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from andactl.errors import ConfigError
from andactl.formats import output_dir as od


def make_artifact(path: Path, tag: str = "old") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "andactl": {"format_version": 1}}))
    (path / "model.safetensors").write_text(tag)
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("name", ["", "  "])
def test_refuses_empty(name):
    with pytest.raises(ConfigError, match="output path is empty"):
        od.check_output(name, overwrite=True)


def test_refuses_cwd_home_root_and_parents_of_cwd(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "mine.txt").write_text("user data")
    monkeypatch.chdir(tmp_path / "proj")
    for target, pattern in [(".", "contains the current directory"), ("..", "contains the current directory"),
                            (str(tmp_path / "proj"), "contains the current directory"), ("/", "filesystem root"),
                            ("~", "home directory")]:
        with pytest.raises(ConfigError, match=pattern):
            od.check_output(target, overwrite=True)
    assert (tmp_path / "proj" / "mine.txt").read_text() == "user data"


def test_refuses_non_artifact_even_with_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not an andactl artifact.*even with --overwrite"):
        od.check_output(tmp_path / "d", overwrite=True)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        od.check_output(tmp_path / "f", overwrite=True)


def test_artifact_needs_overwrite_empty_dir_does_not(tmp_path):
    make_artifact(tmp_path / "a")
    with pytest.raises(ConfigError, match="pass --overwrite"):
        od.check_output(tmp_path / "a", overwrite=False)
    assert od.check_output(tmp_path / "a", overwrite=True) == (tmp_path / "a").resolve()
    (tmp_path / "e").mkdir()
    assert od.check_output(tmp_path / "e", overwrite=False) == (tmp_path / "e").resolve()
    assert od.check_output(tmp_path / "new" / "deeper", overwrite=False) == (tmp_path / "new" / "deeper").resolve()


def test_parent_is_file_and_name_too_long(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        od.check_output(tmp_path / "f" / "out", overwrite=False)
    with pytest.raises(ConfigError, match="too long: with the temporary prefix it needs 2[0-9][0-9] bytes, the filesystem allows 255"):
        od.check_output(tmp_path / ("n" * 230), overwrite=False)
    assert od.check_output(tmp_path / ("n" * 200), overwrite=False)


def test_replace_keeps_old_until_complete_and_swaps(tmp_path):
    out = make_artifact(tmp_path / "a", "old")
    with pytest.raises(RuntimeError):
        with od.staged_output(out, overwrite=True) as tmp:
            (tmp / "model.safetensors").write_text("half")
            raise RuntimeError("boom")
    assert (out / "model.safetensors").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    with od.staged_output(out, overwrite=True) as tmp:
        make_artifact(tmp, "new")
        assert tmp.name.startswith(f".a.partial-{os.getpid()}-")
    assert (out / "model.safetensors").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_exchange_is_atomic_swap(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "1").write_text("x")
    (tmp_path / "y").mkdir()
    assert od._exchange(tmp_path / "x", tmp_path / "y")
    assert (tmp_path / "y" / "1").read_text() == "x" and not any((tmp_path / "x").iterdir())


def test_stale_partials_of_dead_pids_removed_and_logged(tmp_path, caplog):
    out = tmp_path / "a"
    pid = dead_pid()
    stale = [tmp_path / f".a.partial-{pid}-deadbeef", tmp_path / f".a.old-{pid}-0badf00d"]
    live = tmp_path / f".a.partial-{os.getppid()}-cafe0123"
    other = tmp_path / f".b.partial-{pid}-deadbeef"
    for d in (*stale, live, other):
        d.mkdir()
        (d / "model.safetensors").write_text("big")
    with caplog.at_level("WARNING", logger="andactl"):
        with od.staged_output(out, overwrite=False) as tmp:
            make_artifact(tmp, "new")
    assert not any(p.exists() for p in stale) and live.exists() and other.exists()
    assert all(str(p) in caplog.text for p in stale) and str(live) not in caplog.text


def test_files_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with od.staged_output(tmp_path / "a", overwrite=False) as tmp:
            make_artifact(tmp, "new")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "a" / "config.json").stat().st_mode & 0o777 == 0o644


def test_files_written_0600_get_umask_permissions(tmp_path):
    old = os.umask(0o002)
    try:
        with od.staged_output(tmp_path / "a", overwrite=False) as tmp:
            make_artifact(tmp, "new")
            os.chmod(tmp / "model.safetensors", 0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "model.safetensors").stat().st_mode & 0o777 == 0o664


def test_unwritable_parent_refused(tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(od.os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(ConfigError, match=f"directory {tmp_path} is not writable"):
        od.check_output(tmp_path / "new" / "out", overwrite=False)


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_written_meanwhile_by_another_process_is_never_replaced(tmp_path, overwrite):
    """Two runs to one new -o: the one that finishes second without --overwrite must not replace
    the first one's artifact (it did: the swap saw an artifact and exchanged it); a folder of a user's
    own put there meanwhile is never replaced, even with --overwrite. Either way the run's partial
    directory is removed and the message says why."""
    out = tmp_path / "out"
    if overwrite:
        make_artifact(out)  # what the run was allowed to replace when it started
    with pytest.raises(ConfigError, match=rf"^{out} changed while this run wrote its artifact \(.*\); nothing was "
                                          r"replaced and this run's result was not kept$"):
        with od.staged_output(out, overwrite=overwrite) as tmp:
            (tmp / "config.json").write_text("{}")
            if overwrite:
                (out / "config.json").unlink()
                (out / "notes.txt").write_text("precious")  # no longer an artifact: a user's folder
            else:
                make_artifact(out, "other run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    kept = {p.name: p.read_text() for p in out.iterdir()}
    assert kept == ({"notes.txt": "precious", "model.safetensors": "old"} if overwrite else
                    {"config.json": json.dumps({"model_type": "llama", "andactl": {"format_version": 1}}),
                     "model.safetensors": "other run"})


def test_rename_that_would_replace_an_artifact_is_refused(tmp_path):
    """The last guard, for an artifact that appears between the re-check and the swap: without
    --overwrite the swap is one rename(2), which replaces an empty directory only."""
    tmp, out = tmp_path / ".partial", make_artifact(tmp_path / "out", "other run")
    tmp.mkdir()
    with pytest.raises(ConfigError, match="was created by another process while this run wrote its artifact"):
        od._swap_in(tmp, out, "t", overwrite=False)
    assert (out / "model.safetensors").read_text() == "other run" and tmp.is_dir()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert od._swap_in(tmp, empty, "t", overwrite=False) is None and not tmp.exists() and empty.is_dir()


def test_disk_full_while_writing_is_one_clear_error(tmp_path):
    """ENOSPC (or a quota, a read-only filesystem) while the artifact is written: a WriteError naming
    the output and the free space, the partial removed (was an internal-error line, seen on a full
    tmpfs)."""
    import errno

    from andactl.errors import WriteError

    out = tmp_path / "out"
    with pytest.raises(WriteError, match=rf"^cannot write the artifact at {out}: No space left on device "
                                         r"\([\d.]+ MB free there now\); nothing was written$"):
        with od.staged_output(out, overwrite=False):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PermissionError):  # other OSErrors stay what they are
        with od.staged_output(out, overwrite=False):
            raise PermissionError(errno.EACCES, "Permission denied")
