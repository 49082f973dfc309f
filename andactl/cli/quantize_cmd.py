"""``andactl quantize``: INT4 weights -> (sensitivity) -> Anda search -> pack, in one command."""
from __future__ import annotations

import click

from andactl.cli.common import (artifact_output_options, calibration_dict, calibration_options, data_dir_option,
                                device_option, dry_run_option, dtype_option, format_option, shortcuts_option,
                                spill_option, storage_dtype_option, stream_option)
from andactl.cli.common import int4_weight_options, search_loss_option, table_options
from andactl.formats.table_quant import DEFAULT_TABLE_GROUP
from andactl.passbase import QUANTIZED
from andactl.passes.search_losses import DEFAULT_SEARCH_LOSS

MIN_GPTQ_TOKENS = 512


def quantize_recipe(weights, weight_method, group_size, asymmetric, act_order, sensitivity, bits, tolerance,
                    budget, max_evals, rounding, activations="anda", fallback="fail", head="int8",
                    embeddings="int8", search_loss=DEFAULT_SEARCH_LOSS, table_group=DEFAULT_TABLE_GROUP,
                    table_clip=False, table_method="rtn") -> list[dict]:
    """The pass list ``andactl quantize`` runs (also what examples/recipes/full.yaml spells out)."""
    steps: list[dict] = []
    if weights == "int4":
        steps.append({"pass": "quantize_weights", "method": weight_method, "group_size": group_size,
                      "symmetric": not asymmetric, "act_order": act_order})
    if sensitivity:
        steps.append({"pass": "sensitivity", "rounding": rounding})
    if activations == "none":
        steps.append({"pass": "keep_activations"})
    elif bits:
        steps.append({"pass": "set_anda_bits", "bits": list(bits)})
    else:
        steps.append({"pass": "anda_search", "tolerance": tolerance, "budget": budget, "max_evals": max_evals,
                      "rounding": rounding, "fallback": fallback, "loss": search_loss})
    steps.append({"pass": "pack", "rounding": rounding} if weights == "int4" else {"pass": "anda_activations", "rounding": rounding})
    if head != "none" or embeddings != "none":
        steps.append({"pass": "quantize_tables", "head": head, "embeddings": embeddings, "group_size": table_group,
                      "clip": table_clip, "method": table_method})
    return steps


class BitsValue(click.IntRange):
    """One of --bits' four mantissa widths. click hands --bits the next four words whatever they
    are, so an option name among them means fewer than four numbers were given: say that, not
    "'-o' is not a valid integer range"."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith("-") and not value[1:].isdigit():
            self.fail(f"--bits takes four numbers (M_qkv M_o M_u M_d); {value!r} came before the fourth", param, ctx)
        return super().convert(value, param, ctx)


@click.command("quantize")
@click.argument("model")
@click.option("--budget", type=click.Choice(["bops", "energy", "latency", "memory"]), default="energy", show_default=True,
              help="Cost model the search minimises.")
@click.option("--tolerance", type=float, default=0.01, show_default=True, help="Largest accepted search loss (--search-loss) on the calibration data, e.g. 0.01 = 1%.")
@click.option("--weights", type=click.Choice(["int4", "none"]), default="int4", show_default=True)
@click.option("--weight-method", type=click.Choice(["gptq", "rtn"]), default="gptq", show_default=True)
@int4_weight_options
@click.option("--act-order", is_flag=True, help="GPTQ activation order (static groups).")
@click.option("--sensitivity/--no-sensitivity", default=False, show_default=True, help="Run the per-type sensitivity sweep first.")
@click.option("--bits", type=BitsValue(1, 16), nargs=4, default=None, help="Fixed M_qkv M_o M_u M_d instead of a search.")
@click.option("--activations", type=click.Choice(["anda", "none"]), default="anda", show_default=True,
              help="none: INT4 weights only (W4A16, the search's reference point).")
@table_options
@click.option("--fallback-w4a16", is_flag=True,
              help="If no tuple meets --tolerance, keep activations unquantized (W4A16) instead of failing.")
@search_loss_option
@click.option("--max-evals", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--rounding", type=click.Choice(["truncate", "nearest"]), default="truncate", show_default=True)
@artifact_output_options
@calibration_options(samples=8, seqlen=512, batch_size=4)
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
def quantize(cctx, model, budget, tolerance, weights, weight_method, group_size, asymmetric, act_order, sensitivity,
             bits, activations, fallback_w4a16, head, embeddings, search_loss, table_group, table_clip, table_method, max_evals, rounding, output, overwrite, dtype,
             storage_dtype, shortcuts, device, data_dir, fmt, dry_run, max_memory, stream, spill_activations, **cal):
    """Quantize MODEL (dense model or sliced artifact): INT4 weights + searched Anda activations."""
    from andactl.cli.run_cmd import run_and_report
    from andactl.data.datasets import resolve_data_dir
    from andactl.errors import ConfigError
    from andactl.formats.artifact import artifact_meta, is_artifact
    from andactl.pipeline import RunOptions
    from andactl.recipe import Recipe

    if not 0.0 < tolerance < 1.0:
        raise ConfigError(f"--tolerance must be in (0, 1), got {tolerance}")
    if weights == "none" and activations == "none":
        raise ConfigError("--weights none --activations none leaves nothing to quantize")
    if weights == "int4" and weight_method == "gptq" and cal["cal_samples"] * cal["cal_seqlen"] < MIN_GPTQ_TOKENS:
        raise ConfigError(f"calibration too small for GPTQ: {cal['cal_samples']}x{cal['cal_seqlen']} tokens, need at least {MIN_GPTQ_TOKENS}")
    if is_artifact(model):
        from pathlib import Path

        done = sorted(set(artifact_meta(Path(model)).get("provides", [])) & set(QUANTIZED))
        if done:
            raise ConfigError(f"{model} is already quantized ({', '.join(done)}); quantize its unquantized source instead")
    steps = quantize_recipe(weights, weight_method, group_size, asymmetric, act_order, sensitivity, bits, tolerance,
                            budget, max_evals, rounding, activations, "w4a16" if fallback_w4a16 else "fail",
                            head, embeddings, search_loss, table_group, table_clip, table_method)
    recipe = Recipe(passes=steps, calibration=calibration_dict(cal))
    opts = RunOptions(model=model, output=output, dtype=dtype, device=device, seed=cal["seed"],
                      data_dir=resolve_data_dir(data_dir), overwrite=overwrite, quiet=cctx.obj.get("quiet", False),
                      storage_dtype=storage_dtype, shortcuts=shortcuts, stream=stream,
                      spill_activations=spill_activations)
    uses_calibration = (weights == "int4" and weight_method == "gptq") or sensitivity or (bits is None and activations == "anda")
    run_and_report(recipe, opts, fmt, calibration_used=uses_calibration,
                   dry_run=dry_run, max_memory=max_memory)


COMMANDS = [quantize]
