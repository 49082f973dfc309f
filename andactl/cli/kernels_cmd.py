"""``andactl kernels build|info``: the C++/CUDA extension."""
from __future__ import annotations

import click

from andactl.cli.common import emit, format_option
from andactl.consoles import stdout_console


@click.group("kernels")
def kernels() -> None:
    """Build or describe the C++/CUDA Anda kernels."""


@kernels.command("build")
@click.option("--cuda/--no-cuda", default=None, help="Build the CUDA flavour (default: when torch has CUDA and a GPU).")
@format_option
def build_cmd(cuda, fmt):
    """Compile the extension now, showing compiler output; exit 1 if it fails."""
    from andactl.kernels.build import build

    res = build(verbose=fmt == "human", cuda=cuda)
    data = {"ok": res.ok, "name": res.name, "cuda": res.cuda, "build_dir": str(res.build_dir) if res.build_dir else None,
            "seconds": res.seconds, "reason": res.reason}
    if not res.ok and res.error:
        click.echo(res.error, err=True)
    emit(data, fmt, lambda d: stdout_console().print(
        f"{'built' if d['ok'] else 'FAILED'}: {d['name']} in {d['seconds']:.1f}s ({d['build_dir'] or d['reason']})"))
    if not res.ok:
        raise SystemExit(1)


@kernels.command("info")
@format_option
def info_cmd(fmt):
    """Which backend loads and why (builds on demand)."""
    import torch

    from andactl.kernels import backend

    chosen = backend.resolve_backend("auto", torch.device("cpu"))
    data = {"auto_backend": chosen.name, "reason": chosen.reason, "isa": chosen.isa, **backend.describe()}
    emit(data, fmt, lambda d: stdout_console().print_json(data=d))


COMMANDS = [kernels]
