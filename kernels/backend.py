"""Kernel backend selection: auto | cuda | cpp | reference, decided once and logged once.

- ``reference``: the pure-torch ops of ``andactl.kernels.ops`` (always available).
- ``cpp``: the C++ CPU kernels of the JIT-built extension (``andactl.kernels.build``).
- ``cuda``: the CUDA kernels (same extension built with nvcc; needs a CUDA torch and a GPU).
- ``auto``: cuda for CUDA tensors when the CUDA kernels loaded, else cpp when the C++
  extension built, else reference.

Loading the extension registers its kernels with the dispatcher for the whole process, so
``torch.ops.andactl.*`` then run them for CPU (and CUDA) tensors whatever the backend name;
the name matters to ``AndaLinear`` (``reference`` runs its fake-quant path).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from andactl.errors import ConfigError
from andactl.kernels import build

log = logging.getLogger("andactl")

BACKENDS = ("auto", "cuda", "cpp", "reference")
_LOGGED: set[tuple[str, str]] = set()  # (requested, chosen) pairs already logged


@dataclass(frozen=True)
class BackendInfo:
    """The backend chosen for a request: ``name`` in cuda|cpp|reference; ``reason`` says why
    (e.g. why the extension is not used); ``isa`` is the CPU SIMD path ("" if not cpp)."""

    name: str
    requested: str
    device: str
    reason: str = ""
    isa: str = ""


def _device(device: torch.device | str | None) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _choose(requested: str, dev: torch.device) -> BackendInfo:
    if requested == "reference":
        return BackendInfo("reference", requested, str(dev), "requested")
    if requested == "cuda" or (requested == "auto" and dev.type == "cuda"):
        if not build.cuda_wanted():
            why = "torch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            if requested == "cuda":
                raise ConfigError(f"backend 'cuda' is unavailable: {why}")
            return BackendInfo("reference", requested, str(dev), why)
        res = build.load(cuda=True)
        if res.ok:
            return BackendInfo("cuda", requested, str(dev), "CUDA extension loaded")
        if requested == "cuda":
            raise ConfigError(f"backend 'cuda' is unavailable: {res.reason}")
        return BackendInfo("reference", requested, str(dev), f"CUDA extension unavailable: {res.reason}")
    # cpp, or auto on a CPU device
    if requested == "cpp" and dev.type != "cpu":
        raise ConfigError(f"backend 'cpp' runs on CPU tensors, not on {dev}")
    res = build.load()
    if res.ok:
        return BackendInfo("cpp", requested, str(dev), "C++ extension loaded", build.cpu_isa_info())
    if requested == "cpp":
        raise ConfigError(f"backend 'cpp' is unavailable: {res.reason}")
    return BackendInfo("reference", requested, str(dev), f"C++ extension unavailable: {res.reason}")


def check_backend_name(requested: str) -> None:
    """ConfigError (one line) unless ``requested`` is one of BACKENDS; reads and builds nothing."""
    if requested not in BACKENDS:
        raise ConfigError(f"unknown kernel backend {requested!r}; choose one of {', '.join(BACKENDS)}")


def resolve_backend(requested: str, device: torch.device | str | None = None) -> BackendInfo:
    """Pick the backend for tensors on ``device``; ConfigError for an unknown name or an explicit
    cpp/cuda that cannot load (the message says why). The build is attempted at most once per
    process (see build.load); each distinct choice is logged once at INFO level."""
    check_backend_name(requested)
    info = _choose(requested, _device(device))
    key = (requested, info.name)
    if key not in _LOGGED:
        _LOGGED.add(key)
        extra = f", {info.isa}" if info.isa else ""
        log.info("andactl kernels: backend %s (requested %s; %s%s)", info.name, requested, info.reason, extra)
    return info


def set_backend(model: nn.Module, name: str, device: torch.device | str | None = None) -> BackendInfo:
    """Resolve ``name`` for ``device`` (default: the device of the model's first parameter or
    buffer) and set ``.backend`` to the resolved name on every AndaLinear in ``model``; returns
    the BackendInfo. Invariant: afterwards every AndaLinear has the same backend."""
    from andactl.models.anda_linear import AndaLinear

    if device is None:
        t = next(iter(model.buffers()), None)
        t = t if t is not None else next(iter(model.parameters()), None)
        device = t.device if t is not None else torch.device("cpu")
    info = resolve_backend(name, device)
    for mod in model.modules():
        if isinstance(mod, AndaLinear):
            mod.backend = info.name
    return info


def set_model_backend(model: nn.Module, requested: str = "auto", device: torch.device | str | None = None) -> str:
    """What every loader of an artifact calls: ``set_backend(model, requested, device)`` when the
    model has an AndaLinear, returning the backend's name; a model without one is left alone and
    nothing is resolved or built ("none (no packed modules)"). Invariant: afterwards a packed
    model's AndaLinears all run the backend ``requested`` resolves to (auto: the C++/CUDA
    extension when it loads, else the reference), never silently the slow reference when the
    extension is usable; on the C++ backend the sibling input projections are linked
    (andactl/models/sibling_linears.py), otherwise unlinked."""
    from andactl.models.anda_linear import AndaLinear
    from andactl.models.sibling_linears import link_siblings

    if not any(isinstance(m, AndaLinear) for m in model.modules()):
        return "none (no packed modules)"
    name = set_backend(model, requested, device).name
    link_siblings(model, enable=name == "cpp")  # q/k/v and gate/up as one fused call each
    return name


def describe() -> dict:
    """What ``andactl env`` shows: per flavour whether it loaded (or why not), the CPU SIMD path,
    the compiler and the cache directory. Does not trigger a build."""
    out: dict = {
        "cache_dir": str(build.cache_root()),
        "compiler": build.compiler(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
        "cpu_isa": build.cpu_isa_info() or None,
    }
    for flavour, res in sorted(build.results().items()):
        out["cuda_extension" if flavour else "cpp_extension"] = {
            "loaded": res.ok, "reason": res.reason or None, "build_dir": res.build_dir,
            "seconds": round(res.seconds, 2),
        }
    out.setdefault("cpp_extension", {"loaded": False, "reason": "not built in this process"})
    return out
