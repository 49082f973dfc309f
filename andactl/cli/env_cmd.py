"""``andactl env``: what this installation can do."""
from __future__ import annotations

import importlib.metadata as md
import platform

import click
import torch

from andactl.cli.common import data_dir_option, emit, format_option
from andactl.consoles import stdout_console


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def _default_model() -> dict:
    from andactl.errors import ModelError
    from andactl.models.loading import DEFAULT_MODEL, alias_file, cache_dir

    try:
        return {"alias": DEFAULT_MODEL, "file": str(alias_file(DEFAULT_MODEL)), "cache": str(cache_dir())}
    except ModelError as err:
        return {"alias": DEFAULT_MODEL, "file": None, "problem": str(err)}


def _kernels() -> dict:
    try:
        from andactl.kernels import backend
    except ImportError:
        return {"backend": "reference", "why": "kernel backend module not installed"}
    chosen = backend.resolve_backend("auto", torch.device("cpu"))  # loads (or JIT-builds once) the extension
    return {"backend": chosen.name, "why": chosen.reason, **backend.describe()}


def _cpu() -> dict:
    """What this CPU computes with: its model name, torch's SIMD level, native bf16 (bf16 autocast in
    recover, ``--dtype auto``) and AMX tiles (split_gemm's products): named beside every figure."""
    from andactl.evaluation.throughput import cpu_name
    from andactl.kernels import split_gemm
    from andactl.models.loading import native_bf16

    return {"name": cpu_name(), "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": native_bf16(), "amx_tiles": split_gemm.tiles_expected()}


def environment(data_dir) -> dict:
    from andactl.data.datasets import resolve_data_dir
    from andactl.models.adapters import supported_model_types

    return {
        "andactl": _version("andactl"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in ("torch", "transformers", "lm_eval", "datasets", "safetensors", "gguf")},
        "cpu": _cpu(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "kernels": _kernels(),
        "data_dir": str(resolve_data_dir(data_dir)) if resolve_data_dir(data_dir) else None,
        "default_model": _default_model(),
        "supported_model_types": supported_model_types(),
    }


@click.command("env")
@data_dir_option
@format_option
def env(data_dir, fmt):
    """Versions, CPU, threads, kernel backend, data directory and default model."""

    def human(d):
        from rich.table import Table

        t = Table(show_header=False, box=None)
        t.add_row("andactl", d["andactl"])
        t.add_row("python", f"{d['python']} ({d['platform']})")
        for k, v in d["packages"].items():
            t.add_row(k, v)
        c = d["cpu"]
        t.add_row("cpu", f"{c['name']} (torch {c['torch_capability']}; bf16 {'native' if c['native_bf16'] else 'not native'}; "
                         f"AMX tiles {'yes' if c['amx_tiles'] else 'no'})")
        t.add_row("torch threads", str(d["torch_threads"]))
        t.add_row("cuda", str(d["cuda_available"]))
        k = d["kernels"]
        t.add_row("kernel backend", f"{k['backend']} ({k.get('why')}; {k.get('cpu_isa') or 'no SIMD info'})")
        t.add_row("data dir", d["data_dir"] or "none (Hugging Face hub)")
        dm = d["default_model"]
        t.add_row("default model", f"{dm['alias']}: {dm.get('file') or dm.get('problem')}")
        t.add_row("architectures", ", ".join(d["supported_model_types"]))
        stdout_console().print(t)

    emit(environment(data_dir), fmt, human)


COMMANDS = [env]
