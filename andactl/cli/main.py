"""``andactl`` entry point."""
from __future__ import annotations

import click

from andactl import __version__
from andactl.cli.common import AndaGroup, setup_logging


@click.group(cls=AndaGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="andactl")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Compress decoder-only LLMs: SliceGPT slicing + Anda activation quantization.

    \b
      andactl slice smollm2-135m --ratio 0.25 -o sliced/
      andactl recover sliced/ --full -o recovered/      # distil the dense model back in
      andactl quantize recovered/ --budget energy -o packed/
      andactl eval packed/ --tasks piqa,arc_e,wikitext2
    """
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    setup_logging(verbose, quiet)


def _register() -> None:
    from andactl.cli import (bench_cmd, env_cmd, eval_cmd, export_cmd, generate_cmd, inspect_cmd, prune_cmd, run_cmd,
                             slice_cmd)

    for mod in (bench_cmd, env_cmd, eval_cmd, export_cmd, generate_cmd, inspect_cmd, prune_cmd, run_cmd, slice_cmd):
        for command in mod.COMMANDS:
            cli.add_command(command)
    for optional in ("quantize_cmd", "kernels_cmd", "sweep_cmd", "recover_cmd"):
        try:
            mod = __import__(f"andactl.cli.{optional}", fromlist=["COMMANDS"])
        except ModuleNotFoundError as err:
            if err.name != f"andactl.cli.{optional}":
                raise
            continue
        for command in mod.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """The ``andactl`` command: ``obj["started"]`` is when this process started (--minutes counts
    the interpreter's start-up too)."""
    from andactl.step_budget import command_started

    cli(prog_name="andactl", obj={"started": command_started()})


if __name__ == "__main__":  # pragma: no cover
    main()
