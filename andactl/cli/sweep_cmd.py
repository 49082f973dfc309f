"""``andactl sweep``: slicing ratio x weight method x Anda tolerance, Pareto frontier, best point."""
from __future__ import annotations

import click

from andactl.cli.common import (FiniteFloat, calibration_dict, calibration_options, data_dir_option, dtype_option,
                                format_option, int4_weight_options, search_loss_option, shortcuts_option, table_options)


@click.command("sweep")
@click.argument("model")
@click.option("-o", "--output", "out_dir", required=True, help="Sweep directory (created; reused to resume).")
@click.option("--ratios", default="0,0.1,0.2,0.3", show_default=True, help="Slicing ratios in [0, 1); 0 = unsliced.")
@click.option("--tolerances", default="0.001,0.01", show_default=True, help="Anda search tolerances in (0, 1).")
@click.option("--weight-methods", default="gptq", show_default=True, help="INT4 weight methods: gptq, rtn (comma-separated).")
@click.option("--windows", type=click.IntRange(min=1), default=8, show_default=True, help="WikiText-2 windows evaluated per point.")
@click.option("--seqlen", type=click.IntRange(min=8), default=2048, show_default=True, help="Evaluation window length.")
@click.option("--budget", type=click.Choice(["bops", "energy", "latency", "memory"]), default="energy", show_default=True)
@click.option("--max-evals", type=click.IntRange(min=1), default=32, show_default=True)
@int4_weight_options
@click.option("--storage-dtype", default="fp16", show_default=True, metavar="bf16|fp16|fp32")
@table_options
@shortcuts_option
@search_loss_option
@click.option("--recover", "recoveries", default="none", show_default=True,
              help="Recovery of each sliced model before its INT4 weights: none, kd, lora, full (`recover --full`, "
                   "the best on small models); comma-separated, each a grid axis; `andactl recover` defaults, "
                   "--recover-steps steps.")
@click.option("--recover-steps", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--max-bytes", type=FiniteFloat(), default=None, help="Pick the lowest-ppl point with at most this many artifact bytes.")
@click.option("--max-energy", type=FiniteFloat(), default=None, help="... with at most this energy per token (cost model, pJ).")
@click.option("--max-ppl-increase", type=FiniteFloat(), default=None,
              help="... with ppl at most (1 + P) x the source model's (e.g. 0.5); alone: the smallest such point.")
@click.option("--write-best", type=click.Path(path_type=str), default=None, help="Copy the picked point's artifact here.")
@click.option("--overwrite", is_flag=True, help="Let --write-best replace an existing andactl artifact.")
@click.option("--backend", type=click.Choice(["auto", "cpp", "reference"]), default="auto", show_default=True,
              help="Kernel backend for evaluating the packed points.")
@calibration_options(samples=8, seqlen=512, batch_size=4)
@dtype_option
@data_dir_option
@format_option
@click.pass_context
def sweep(cctx, model, out_dir, ratios, tolerances, weight_methods, windows, seqlen, budget, max_evals, group_size,
          asymmetric, storage_dtype, head, embeddings, table_group, table_clip, table_method, shortcuts, search_loss, recoveries, recover_steps,
          max_bytes, max_energy, max_ppl_increase, write_best, overwrite, backend, dtype, data_dir, fmt, **cal):
    """Explore a grid of compressed versions of MODEL into -o DIR and draw the Pareto frontier."""
    import time
    from pathlib import Path

    from andactl.cli.common import emit
    from andactl.data.datasets import resolve_data_dir
    from andactl.errors import ConfigError
    from andactl.formats.output_dir import write_atomic
    from andactl.formats.storage import parse_shortcut_storage, parse_storage_dtype
    from andactl.sweep import report
    from andactl.sweep.grid import build_grid, parse_floats
    from andactl.sweep.pareto import pick_best
    from andactl.sweep.runner import SweepRunner, SweepSettings

    points = build_grid(parse_floats(ratios, "--ratios"), parse_floats(tolerances, "--tolerances"),
                        [m.strip() for m in weight_methods.split(",") if m.strip()],
                        [r.strip() for r in recoveries.split(",") if r.strip()] or ["none"])
    parse_storage_dtype(storage_dtype)
    parse_shortcut_storage(shortcuts)
    for name, v in (("--max-bytes", max_bytes), ("--max-energy", max_energy), ("--max-ppl-increase", max_ppl_increase)):
        if v is not None and not v > 0:
            raise ConfigError(f"{name} must be positive, got {v:g}")
    if write_best and max_bytes is None and max_energy is None and max_ppl_increase is None:
        raise ConfigError("--write-best needs a budget: --max-bytes, --max-energy or --max-ppl-increase")
    out = Path(out_dir).expanduser()  # checked by SweepRunner.run before any work (check_sweep_dir)
    if write_best:
        _check_target(Path(write_best).expanduser(), overwrite)
    settings = SweepSettings(model=model, windows=windows, seqlen=seqlen, calibration=calibration_dict(cal), budget=budget,
                             max_evals=max_evals, group_size=group_size, symmetric=not asymmetric, storage_dtype=storage_dtype, head=head,
                             embeddings=embeddings, dtype=dtype, backend=backend, search_loss=search_loss,
                             table_group=table_group, table_clip=table_clip, shortcuts=shortcuts, recover_steps=recover_steps,
                             table_method=table_method)
    t0 = time.perf_counter()
    runner = SweepRunner(out, settings, resolve_data_dir(data_dir), quiet=cctx.obj.get("quiet", False))
    try:
        records, reused = runner.run(points)
    except KeyboardInterrupt as err:
        _resumable(err, out)
        raise
    base = runner.base()
    doc = report.summary(records, base, reused, None, time.perf_counter() - t0)
    best = None
    error = None
    if max_bytes is not None or max_energy is not None or max_ppl_increase is not None:
        try:
            best = pick_best(records, max_bytes, max_energy, max_ppl_increase)
            doc["best"] = best["key"]
        except ConfigError as err:
            error = err
    report.write_json(out, doc)
    write_atomic(out / "pareto.png", report.pareto_png(doc))
    emit(doc, fmt, report.print_table)
    if error is not None:
        raise error
    if best is not None and write_best:
        _copy_artifact(Path(best["artifact"]), Path(write_best).expanduser(), overwrite)
        click.echo(f"best point {best['key']} written to {write_best}", err=True)


def _resumable(err: KeyboardInterrupt, out) -> None:
    """Raises the interruption with a message saying what stays, once DIR is a sweep directory: its
    finished points (each written atomically) stay and the same command resumes; returns otherwise."""
    from andactl.errors import Interrupted, interrupt_message
    from andactl.sweep.runner import MARKER

    if (out / MARKER).is_file():
        code = interrupt_message(err)[1]
        raise Interrupted(code, f"interrupted: the finished points stay in {out}; the same command resumes there, "
                                "the point in progress was not written") from None


def _check_target(target, overwrite: bool) -> None:
    """--write-best's target follows every artifact output's rules (formats/output_dir.py)."""
    from andactl.errors import ConfigError
    from andactl.formats.output_dir import check_output

    try:
        check_output(target, overwrite)
    except ConfigError as err:
        raise ConfigError(f"--write-best: {err}") from None


def _copy_artifact(src, dst, overwrite: bool) -> None:
    """Copies artifact ``src`` to ``dst`` as every artifact is written: staged beside it, swapped in
    atomically (an existing artifact at ``dst`` stays whole until the swap)."""
    import shutil

    from andactl.formats.output_dir import staged_output

    with staged_output(dst, overwrite) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)


COMMANDS = [sweep]
