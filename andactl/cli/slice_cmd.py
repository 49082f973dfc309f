"""``andactl slice``: SliceGPT (fuse norms -> PCA rotate -> slice) in one command."""
from __future__ import annotations

import click

from andactl.cli.common import (artifact_output_options, calibration_dict, calibration_options, data_dir_option,
                                device_option, dry_run_option, dtype_option, format_option, shortcuts_option,
                                spill_option, storage_dtype_option, stream_option)


@click.command("slice")
@click.argument("model")
@click.option("--ratio", type=float, required=True, help="Fraction of the hidden dimension to remove, in [0, 1).")
@click.option("--round-to", type=click.IntRange(min=1), default=8, show_default=True, help="Kept width is a multiple of this.")
@click.option("--slice-head", is_flag=True, help="Also slice the last layer's output and the head's input (SliceGPT keeps them full).")
@click.option("--basis", type=click.Choice(["pca", "fisher"]), default="pca", show_default=True,
              help="Directions kept: pca (SliceGPT: most energy) or fisher (most loss, from the gradient; "
                   "a backward pass over the calibration text; not with --stream).")
@artifact_output_options
@calibration_options()
@dtype_option
@storage_dtype_option
@shortcuts_option
@device_option
@data_dir_option
@format_option
@dry_run_option
@stream_option
@spill_option
@click.pass_context
def slice_(cctx, model, ratio, round_to, slice_head, basis, output, overwrite, dtype, storage_dtype, shortcuts, device, data_dir, fmt,
           dry_run, max_memory, stream, spill_activations, **cal):
    """Slice MODEL with SliceGPT at --ratio and write an artifact to -o."""
    from andactl.cli.run_cmd import run_and_report
    from andactl.data.datasets import resolve_data_dir
    from andactl.errors import ConfigError
    from andactl.pipeline import RunOptions
    from andactl.recipe import Recipe

    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"--ratio must be in [0, 1), got {ratio}")
    recipe = Recipe(
        passes=[{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": ratio, "round_to": round_to, "slice_head": slice_head,
                                                  "basis": basis}, {"pass": "slice"}],
        calibration=calibration_dict(cal),
    )
    opts = RunOptions(model=model, output=output, dtype=dtype, device=device, seed=cal["seed"],
                      data_dir=resolve_data_dir(data_dir), overwrite=overwrite, quiet=cctx.obj.get("quiet", False),
                      storage_dtype=storage_dtype, shortcuts=shortcuts, stream=stream,
                      spill_activations=spill_activations)
    run_and_report(recipe, opts, fmt, dry_run=dry_run, max_memory=max_memory)


COMMANDS = [slice_]
