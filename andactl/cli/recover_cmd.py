"""``andactl recover``: recovery fine-tuning of a sliced model (LoRA RFT or distillation), merged."""
from __future__ import annotations

import logging

import click

from andactl.cli.common import (FiniteFloat, artifact_output_options, data_dir_option, device_option, dry_run_option,
                                dtype_option, format_option, seed_option)
from andactl.step_budget import TIMING_MARGIN

log = logging.getLogger("andactl")


@click.command("recover")
@click.argument("model")
@click.option("--method", default="kd", show_default=True,
              help="lora: LoRA + cross-entropy (SliceGPT's RFT); kd: KL(teacher || student) [+ --ce-weight x CE].")
@click.option("--full", is_flag=True, help="Train all attention/MLP linear weights instead of LoRA adapters.")
@click.option("--teacher", default=None, help="Teacher model source for kd / self / mix (default: the dense model the artifact came from).")
@click.option("--train-data", default="alpaca", show_default=True,
              help="dataset[/split] (train split by default; evaluation splits are refused), 'self' (sampled from the "
                   "teacher) or 'mix' (half alpaca, half self).")
@click.option("--steps", type=int, default=None, help="Optimiser steps [default: 40, the recover pass's].")
@click.option("--minutes", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Instead of --steps: as many steps as fit this wall time on this machine: --dry-run's estimate, "
                   "scaled by one step timed in a child process first (chosen before training; logged with the "
                   f"--steps that repeats the run; {TIMING_MARGIN:.0%} of the budget kept in reserve).")
@click.option("--lr", type=float, default=None, help="Peak learning rate [default: 1e-3 LoRA, 1e-4 --full].")
@click.option("--seqlen", type=int, default=256, show_default=True, help="Tokens per training sequence.")
@click.option("--batch-size", "--batch_size", "batch_size", type=int, default=4, show_default=True, help="Sequences per micro-batch.")
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Micro-batches per optimiser step.")
@click.option("--warmup", type=float, default=0.1, show_default=True, help="Warm-up, as a fraction of --steps.")
@click.option("--schedule", type=click.Choice(["cosine", "linear"]), default="cosine", show_default=True)
@click.option("--ce-weight", type=float, default=0.0, show_default=True, help="kd: weight of the cross-entropy term.")
@click.option("--teacher-topk", type=int, default=0, show_default=True,
              help="kd: distil from the teacher's K most likely tokens per position (+ the rest's mass), computed "
                   "before training; the teacher is then freed, so it never sits beside the student. 0: the whole "
                   "distribution, teacher in memory throughout.")
@click.option("--eval-every", type=int, default=10, show_default=True, help="Held-out loss every N steps.")
@click.option("--held-out", type=int, default=8, show_default=True, help="Held-out sequences (kept aside from the training text).")
@click.option("--checkpoint/--no-checkpoint", default=None,
              help="Recompute every decoder layer's activations in backward (less memory, ~1/3 more of the "
                   "student's compute), or none. Default: only the layers whose activations do not fit in 512 MiB.")
@click.option("--head-products", type=click.Choice(["auto", "split", "float32"]), default="auto", show_default=True,
              help="How the frozen LM heads multiply in the loss: split = split bfloat16 on AMX-BF16 tiles "
                   "(float32-grade, faster; the heads packed once: 4 bytes per head weight, twice for the student's); "
                   "float32 = torch's float32 GEMM; auto = split where the CPU has the tiles and the packed heads "
                   "take at most 1 GiB.")
@seed_option(42)
@artifact_output_options
@dtype_option
@device_option
@data_dir_option
@dry_run_option
@format_option
@click.pass_context
def recover(cctx, model, method, full, teacher, train_data, steps, minutes, lr, seqlen, batch_size, grad_accum, warmup, schedule,
            ce_weight, teacher_topk, eval_every, held_out, checkpoint, head_products, seed, output, overwrite, dtype, device, data_dir, dry_run, max_memory,
            fmt):
    """Fine-tune a sliced or pruned MODEL to recover quality; writes an ordinary artifact to -o.

    \b
      andactl recover sliced/ -o recovered/                       # distil from the dense source
      andactl recover sliced/ --method lora --steps 100 -o rft/   # SliceGPT's RFT
      andactl recover sliced/ --full --minutes 20 -o best20/      # the steps 20 minutes hold here
    """
    import time
    from pathlib import Path

    from andactl.cli.run_cmd import run_and_report
    from andactl.data.datasets import resolve_data_dir
    from andactl.formats.artifact import artifact_meta, is_artifact
    from andactl.passbase import parse_config
    from andactl.passes.recover import RecoverConfig, preflight
    from andactl.passes.recover_data import check_available
    from andactl.passes.recover_teacher import check_teacher, dense_source
    from andactl.pipeline import RunOptions
    from andactl.preflight import check_seqlen, check_topk, model_source
    from andactl.recipe import Recipe

    # --minutes counts from the process's start (the entry point's obj), else from here (in-process callers)
    started = cctx.obj["started"] if "started" in (cctx.obj or {}) else time.perf_counter()
    if steps is not None and minutes is not None:
        raise click.UsageError("give --steps or --minutes, not both")
    params = {"method": method, "full": full, "teacher": teacher, "train_data": train_data, "lr": lr,
              "seqlen": seqlen, "batch_size": batch_size, "grad_accum": grad_accum, "warmup": warmup,
              "schedule": schedule, "ce_weight": ce_weight, "teacher_topk": teacher_topk, "eval_every": eval_every,
              "held_out": held_out, "checkpoint": checkpoint, "head_products": head_products,
              **({} if steps is None else {"steps": steps})}
    config = parse_config(RecoverConfig, params, "recover")
    folder = model_source(model)[1]  # a model that is not there is named as such before any other check
    meta = artifact_meta(Path(model)) if is_artifact(model) else {}
    teacher_src = teacher or (dense_source(meta.get("provenance", {}), model) if config.needs_teacher else None)
    preflight(config, set(meta.get("provides", [])), teacher_src)
    data = resolve_data_dir(data_dir)
    check_available(train_data, data)
    if config.needs_teacher:
        check_teacher(model, teacher_src, config.ce_weight)
    check_seqlen(folder, seqlen, "--seqlen")
    check_topk(folder, teacher_topk, "--teacher-topk")
    opts = RunOptions(model=model, output=output, dtype=dtype, device=device, seed=seed, data_dir=data,
                      overwrite=overwrite, quiet=cctx.obj.get("quiet", False))

    def recipe_of(step: dict) -> Recipe:
        return Recipe(passes=[{"pass": "recover", **step}])

    if minutes is not None:
        from andactl.step_budget import recover_steps
        from andactl.step_timing import timed_step_seconds

        def timed() -> float | None:
            return timed_step_seconds(model, params, teacher_src, dtype, device, seed)

        budget = recover_steps(60.0 * minutes, lambda n, **kw: recipe_of({**params, **kw, "steps": n}), opts,
                               started, None if dry_run else timed)
        params["steps"] = budget.steps
        log.info("recover %s", budget.line())
    run_and_report(recipe_of(params), opts, fmt, dry_run=dry_run, max_memory=max_memory)


COMMANDS = [recover]
