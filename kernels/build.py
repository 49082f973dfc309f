"""Just-in-time build and loading of the andactl C++/CUDA torch extension.

The extension only adds kernels (``TORCH_LIBRARY_IMPL(andactl, CPU|CUDA)``) to the ops whose
schemas ``andactl.kernels.ops``, ``.prepack`` and ``.fused`` define, so those modules are always
imported before the library is loaded. Builds go to ``$ANDACTL_CACHE_DIR`` (else ``~/.cache/andactl/ext``) under
``<torch version>-<hash of sources and flags>``, so a source or flag change never reuses a stale
binary. Flags: ``-O3 -fopenmp`` (SIMD paths use per-function target attributes and are chosen at
run time; never ``-march=native``). A failed build is remembered per process: ``load()`` then
returns the failed BuildResult (one warning is logged) and callers fall back to the reference.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

log = logging.getLogger("andactl")

CSRC = Path(__file__).resolve().parent / "csrc"
CPU_SOURCES = ("anda_cpu.cpp", "anda_kern.cpp", "anda_pack_avx2.cpp", "anda_gemm_kern.cpp", "anda_gemm_amx.cpp",
               "anda_quant.cpp", "anda_fused_cpu.cpp", "table_kern.cpp", "table_amx.cpp", "table_cpu.cpp",
               "attn_kern.cpp", "attn_cpu.cpp", "rows_cpu.cpp", "shortcut_kern.cpp",
               "shortcut_cpu.cpp", "split_gemm.cpp", "split_gemm_cpu.cpp")
CPU_HEADERS = ("anda_kern.h", "anda_group_avx2.h", "split_gemm.h")
CUDA_SOURCES = ("anda_cuda.cu",)
CFLAGS = ("-O3", "-fopenmp")
LDFLAGS = ("-fopenmp",)
CUDA_FLAGS = ("-O3",)
BUILD_LOCK = ".andactl-build.lock"  # flock'ed while a process builds or loads one build directory
TORCH_BATON = "lock"  # torch.utils.cpp_extension's own lock file in the build directory


@dataclass(frozen=True)
class BuildResult:
    """Outcome of building/loading one extension flavour. ``ok`` is True iff its kernels are
    registered with the dispatcher in this process; otherwise ``error`` says why (one line in
    ``reason``, the full compiler output in ``error``)."""

    ok: bool
    name: str
    cuda: bool
    build_dir: str
    seconds: float = 0.0
    reason: str = ""
    error: str = ""
    sources: tuple[str, ...] = field(default_factory=tuple)


_LOCK = threading.Lock()
_RESULTS: dict[bool, BuildResult] = {}  # per-process memo, keyed by "with CUDA"


def cuda_wanted() -> bool:
    """True when this torch is a CUDA build and a GPU is visible (then the .cu is compiled too)."""
    return torch.version.cuda is not None and torch.cuda.is_available()


def cache_root() -> Path:
    """Root directory of extension builds: $ANDACTL_CACHE_DIR or ~/.cache/andactl/ext."""
    env = os.environ.get("ANDACTL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "andactl" / "ext"


def _sources(cuda: bool) -> list[Path]:
    names = CPU_SOURCES + (CUDA_SOURCES if cuda else ())
    return [CSRC / n for n in names]


def build_key(cuda: bool) -> str:
    """``<torch version>-<16 hex of sha256 over sources, headers and flags>`` (deterministic)."""
    h = hashlib.sha256()
    for p in _sources(cuda) + [CSRC / n for n in CPU_HEADERS]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(repr((CFLAGS, LDFLAGS, CUDA_FLAGS if cuda else (), cuda)).encode())
    tv = torch.__version__.replace("+", "_")
    return f"{tv}-{h.hexdigest()[:16]}"


@contextmanager
def build_lock(bdir: Path) -> Iterator[None]:
    """Holds an exclusive flock on ``bdir``'s BUILD_LOCK: one andactl process builds a directory at
    a time, the others wait, then load what it built. The kernel drops a flock when its process
    dies, even by SIGKILL, so while it is held a torch baton (TORCH_BATON) in ``bdir`` is a killed
    build's leftover and is removed: torch's own wait for it never ends (every later command hung)."""
    import fcntl

    fd = os.open(bdir / BUILD_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another andactl process that is building the C++ extension in %s", bdir)
            fcntl.flock(fd, fcntl.LOCK_EX)
        baton = bdir / TORCH_BATON
        if baton.exists():
            log.warning("removing %s, left by an extension build that was killed", baton)
            baton.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


@contextmanager
def standard_streams() -> Iterator[None]:
    """Inside, ``sys.stdout`` / ``sys.stderr`` are streams even where Python started with that file
    descriptor closed (``andactl … >&-``: it sets them to None): torch's extension loader flushes
    them, and a None failed the load ("'NoneType' object has no attribute 'flush'"), so the run
    fell back to the reference kernels. Restored after."""
    missing = [name for name in ("stdout", "stderr") if getattr(sys, name) is None]
    with open(os.devnull, "w") as devnull:
        for name in missing:
            setattr(sys, name, devnull)
        try:
            yield
        finally:
            for name in missing:
                setattr(sys, name, None)


def _build(cuda: bool, verbose: bool) -> BuildResult:
    import andactl.kernels.ops  # noqa: F401  (defines the schemas the library implements)
    import andactl.kernels.prepack  # noqa: F401  (int4_prepack, anda_gemm_prepacked schemas)
    import andactl.kernels.fused  # noqa: F401  (anda_linear schema)
    import andactl.kernels.tables  # noqa: F401  (table_linear schema)
    import andactl.kernels.attention  # noqa: F401  (decode_attention schema)
    import andactl.kernels.rows  # noqa: F401  (rms_norm, rotary schemas)
    import andactl.kernels.shortcut  # noqa: F401  (shortcut_add schema)
    import andactl.kernels.split_gemm  # noqa: F401  (split_pack, split_mm schemas)
    from torch.utils import cpp_extension

    key = build_key(cuda)
    name = ("andactl_cuda_" if cuda else "andactl_cpp_") + key.rsplit("-", 1)[1]
    bdir = cache_root() / key
    srcs = tuple(str(p) for p in _sources(cuda))
    t0 = time.perf_counter()
    try:
        bdir.mkdir(parents=True, exist_ok=True)
        with build_lock(bdir), standard_streams():
            cpp_extension.load(
                name=name, sources=list(srcs), extra_cflags=list(CFLAGS), extra_ldflags=list(LDFLAGS),
                extra_cuda_cflags=list(CUDA_FLAGS) if cuda else None, build_directory=str(bdir),
                is_python_module=False, verbose=verbose, with_cuda=cuda,
            )
    except Exception as err:  # noqa: BLE001 - any compiler/loader failure means "fall back"
        text = str(err)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error:" in ln), lines[0] if lines else repr(err))
        reason = f"{type(err).__name__}: {first}"
        return BuildResult(False, name, cuda, str(bdir), time.perf_counter() - t0, reason[:300], text, srcs)
    return BuildResult(True, name, cuda, str(bdir), time.perf_counter() - t0, "", "", srcs)


def load(cuda: bool | None = None) -> BuildResult:
    """Build (if needed) and load the extension once per process; never raises.

    ``cuda=None`` means :func:`cuda_wanted`. The first failure is logged as ONE warning and
    remembered; later calls return the same BuildResult without retrying.
    """
    cuda = cuda_wanted() if cuda is None else bool(cuda)
    with _LOCK:
        other = _RESULTS.get(not cuda)
        if cuda not in _RESULTS and other is not None and other.ok:
            # one flavour per process: the CUDA library also holds the CPU kernels
            if other.cuda:
                return other
            return BuildResult(False, other.name, True, other.build_dir,
                               reason="the CPU-only extension is already loaded in this process")
        if cuda not in _RESULTS:
            res = _build(cuda, verbose=False)
            _RESULTS[cuda] = res
            if not res.ok:
                log.warning("andactl %s extension unavailable, using the reference kernels: %s",
                            "CUDA" if cuda else "C++", res.reason)
        return _RESULTS[cuda]


def build(verbose: bool = True, cuda: bool | None = None) -> BuildResult:
    """Explicit build (``andactl kernels build``): compiles now, showing compiler output when
    ``verbose``, and records the result for this process (a success also loads the library)."""
    cuda = cuda_wanted() if cuda is None else bool(cuda)
    with _LOCK:
        prev = _RESULTS.get(cuda)
        if prev is not None and prev.ok:
            return prev
        res = _build(cuda, verbose=verbose)
        _RESULTS[cuda] = res
        return res


def cpu_isa_info() -> str:
    """``"detected=<isa> selected=<isa>"`` from the loaded library (ANDA_CPU_ISA caps the
    selection per call), or "" when the C++ extension is not loaded."""
    try:
        return str(torch.ops.andactl_cpp.isa_info())
    except (AttributeError, RuntimeError):
        return ""


def compiler() -> str:
    """The C++ compiler torch.utils.cpp_extension would use (CXX or c++)."""
    return os.environ.get("CXX", "c++")


def results() -> dict[bool, BuildResult]:
    """Build results recorded in this process so far, keyed by "with CUDA" (a copy)."""
    with _LOCK:
        return dict(_RESULTS)
