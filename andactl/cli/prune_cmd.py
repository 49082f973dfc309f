"""``andactl prune``: structured MLP neuron pruning (passes/prune_mlp.py) in one command."""
from __future__ import annotations

import click

from andactl.cli.common import (artifact_output_options, calibration_dict, calibration_options, data_dir_option,
                                device_option, dry_run_option, dtype_option, format_option, storage_dtype_option)


@click.command("prune")
@click.argument("model")
@click.option("--ratio", type=float, required=True, help="Fraction of every layer's MLP neurons to remove, in (0, 1).")
@click.option("--round-to", type=click.IntRange(min=1), default=64, show_default=True,
              help="Kept neurons per layer are a multiple of this (64: whole INT4/Anda groups).")
@artifact_output_options
@calibration_options(samples=32, seqlen=1024)
@dtype_option
@storage_dtype_option
@device_option
@data_dir_option
@format_option
@dry_run_option
@click.pass_context
def prune(cctx, model, ratio, round_to, output, overwrite, dtype, storage_dtype, device, data_dir, fmt, dry_run,
          max_memory, **cal):
    """Remove the MLP neurons of MODEL that write least into the residual stream; write an artifact to -o.

    \b
      andactl prune smollm2-135m --ratio 0.2 -o pruned/     # 1216 of 1536 neurons per layer kept
      andactl recover pruned/ --full -o recovered/          # distil from the dense source
    """
    from andactl.cli.run_cmd import run_and_report
    from andactl.data.datasets import resolve_data_dir
    from andactl.passes.prune_mlp import PruneMLPConfig
    from andactl.pipeline import RunOptions
    from andactl.recipe import Recipe

    PruneMLPConfig(ratio=ratio, round_to=round_to).validate()  # one line before anything is loaded
    recipe = Recipe(passes=[{"pass": "prune_mlp", "ratio": ratio, "round_to": round_to}],
                    calibration=calibration_dict(cal))
    opts = RunOptions(model=model, output=output, dtype=dtype, device=device, seed=cal["seed"],
                      data_dir=resolve_data_dir(data_dir), overwrite=overwrite, quiet=cctx.obj.get("quiet", False),
                      storage_dtype=storage_dtype)
    run_and_report(recipe, opts, fmt, dry_run=dry_run, max_memory=max_memory)


COMMANDS = [prune]
