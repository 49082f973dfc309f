"""``andactl run`` (a recipe file) and ``andactl passes`` (what recipes may use)."""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import click

from andactl.cli.common import (data_dir_option, dry_run_option, emit, format_option, spill_option,
                                 stream_option)
from andactl.consoles import encodable, stdout_console

log = logging.getLogger("andactl")


def run_and_report(recipe, opts, fmt: str, eval_spec: dict | None = None, calibration_used: bool = True,
                   dry_run: bool = False, max_memory: float | None = None) -> None:
    """Checks every input (andactl/preflight.py), runs ``recipe`` with ``opts``, optionally
    evaluates the result, prints a summary; with ``dry_run`` only prints the resource estimate (no
    weights read, nothing written); with ``max_memory`` (GB) first refuses a run whose estimated
    peak host RAM is larger."""
    from andactl.manager import PassManager
    from andactl.preflight import preflight, source_capabilities

    manager = PassManager.from_recipe(recipe.passes, [])  # pass configs first: their errors name the flag
    manager.check(source_capabilities(opts.model))  # the recipe against what the source already is
    if (dry_run or max_memory is not None or getattr(opts, "stream", False) is not False
            or getattr(opts, "spill_activations", False) is not False):  # streaming/spilling: check disk room first
        from andactl.dry_run.estimate import human
        from andactl.dry_run.memory import plan_memory

        report = plan_memory(recipe, opts, max_memory, wanted=dry_run)  # decides opts.stream when None
        if dry_run:
            emit(report, fmt, human)
            return
    from andactl import distributed
    from andactl.consoles import stderr_console
    from andactl.instruments import LogPasses, PeakMemory, Timing
    from andactl.pipeline import calibration_config, run_recipe

    calibration_config(recipe.calibration or {})
    steps = manager.resolved_recipe()
    recovers = [s for s in steps if s["pass"] == "recover"]
    preflight(opts.model, opts.output, opts.overwrite, opts.data_dir, recipe.calibration, eval_spec, calibration_used,
              train_seqlens=[int(s["seqlen"]) for s in recovers], prunes=[s for s in steps if s["pass"] == "prune_mlp"])
    if max_memory is None:
        # before minutes of work: a teacher beside the student, a large calibration batch in the search
        from andactl.dry_run.memory import over_memory_warning

        warning = over_memory_warning(recipe, opts)
        if warning:
            log.warning(warning)

    if distributed.requested_world() > 1 and os.environ.get("RANK", "0") != "0":
        opts.quiet = True  # torchrun: only rank 0 logs and prints

    # instruments exit in reverse order: LogPasses first in the list sees the timing and memory
    instruments = ([] if opts.quiet else [LogPasses(stderr_console())]) + [Timing(), PeakMemory()]
    ctx, path, resolved = run_recipe(recipe, opts, instruments)
    if not distributed.is_main() or (distributed.requested_world() > 1 and os.environ.get("RANK", "0") != "0"):
        return
    summary = {"model": opts.model, "output": str(path) if path else None, "passes": ctx.report.get("passes", [])}
    for key in ("slicing", "sensitivity", "search"):
        if key in ctx.report:
            summary[key] = ctx.report[key]
    if eval_spec:
        import gc

        from andactl.evaluation.harness import parse_tasks
        from andactl.evaluation.runner import evaluate
        from andactl.kernels.backend import set_model_backend
        from andactl.models.loading import load_model

        if path is None:
            # nothing written: the run's own model, as the passes left it in memory (this evaluated the
            # source model instead, and reported it as the run's; stop 63)
            loaded = ctx
        else:
            # the run's model and working state go before the artifact is loaded for the evaluation (they
            # stayed beside it: full.yaml's chain peaked at 3.03 GB in its eval step; stop 63)
            del ctx
            gc.collect()
            loaded = load_model(str(path), opts.dtype, opts.device)
        summary["eval_backend"] = set_model_backend(loaded.model, eval_spec.get("backend", "auto"), opts.device)
        summary["eval"] = evaluate(loaded, parse_tasks(eval_spec.get("tasks", "wikitext2")), opts.data_dir,
                                   limit=eval_spec.get("limit"), seqlen=eval_spec.get("seqlen", 2048), device=opts.device,
                                   progress=not opts.quiet)
    emit(summary, fmt, _human_summary)


def _brief(items: list[str], width: int = 90) -> str:
    """Joins whole ``key=value`` items up to ``width`` characters; never cuts one in half (a cut
    ``lr=0.001`` would read ``lr=0.0``), marking what was left out with an ellipsis."""
    out: list[str] = []
    more = encodable("…", "...")
    for item in items:
        if len(", ".join(out + [item])) > width:
            return ", ".join(out) + (f", {more}" if out else item[: width - len(more)] + more)
        out.append(item)
    return ", ".join(out)


def _human_summary(s: dict) -> None:
    from rich.table import Table

    t = Table(title=f"andactl run: {s['model']}")
    for col in ("pass", "seconds", "peak RSS MB", "result"):
        t.add_column(col)
    for rec in s["passes"]:
        res = rec.get("result", {})
        brief = _brief([f"{k}={v}" for k, v in res.items() if isinstance(v, (int, float, str))])
        t.add_row(rec["pass"], f"{rec.get('seconds', 0):.1f}", str(rec.get("peak_rss_mb", "")), brief)
    c = stdout_console()
    c.print(t)
    if s.get("sensitivity"):
        from andactl.passes.sensitivity import sensitivity_table

        st = Table(title=f"sensitivity: ppl/ppl_ref - 1 (ppl_ref {s['sensitivity']['reference_ppl']:.3f}, others at {s['sensitivity']['hold']})")
        for col in ("M", "A_qkv", "A_o", "A_u", "A_d"):
            st.add_column(col, justify="right")
        for row in sensitivity_table(s["sensitivity"]):
            st.add_row(*row)
        c.print(st)
    if s.get("search"):
        sr = s["search"]
        if sr.get("tuple") is None:
            c.print(f"search ({sr['budget']}, tolerance {sr['tolerance']}): no tuple met the tolerance in "
                    f"{sr['evaluations']} evaluations; activations unquantized (W4A16)")
        else:
            c.print(f"search ({sr['budget']} budget): {sr['tuple']} after {sr['evaluations']} evaluations, "
                    f"loss {100 * sr['loss']:+.2f}% within the {100 * sr['tolerance']:g}% tolerance "
                    f"({sr.get('loss_kind', 'ppl')} against W4A16 on the calibration text), "
                    "reduction vs FP16: " + ", ".join(f"{k} {v:.2f}x" for k, v in sr["reduction_vs_fp16"].items()))
    for rec in s["passes"]:  # what a recovery did, which the result column's brief cuts off
        res = rec.get("result", {})
        if res.get("held_out_before") is not None and res.get("held_out_after") is not None:
            before, after = res["held_out_before"], res["held_out_after"]
            change = f" ({100 * (after / before - 1):+.1f}%)" if before > 0 else ""
            c.print(f"{rec['pass']}: held-out {res.get('loss', 'loss')} {before:.4g} -> {after:.4g}{change} "
                    f"after {res.get('steps')} steps")
    if s.get("output"):
        c.print(f"artifact: {s['output']}")
    if s.get("eval"):
        for task, res in s["eval"].items():
            c.print(f"{task}: " + ", ".join(f"{k}={v:.4g}" for k, v in res.items() if k in ("ppl", "acc", "acc_norm")))


@click.command("run")
@click.argument("recipe_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Overrides the recipe's model.")
@click.option("-o", "--output", default=None, help="Overrides the recipe's output directory.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")
@click.option("--dtype", default=None, type=click.Choice(["float32", "bfloat16", "float16", "float64"]))
@click.option("--device", default=None)
@data_dir_option
@format_option
@dry_run_option
@stream_option
@spill_option
@click.pass_context
def run(cctx, recipe_file, model, output, overwrite, dtype, device, data_dir, fmt, dry_run, max_memory, stream,
        spill_activations):
    """Run a whole recipe (YAML: a list of {pass: name, ...} or a mapping with model/output/passes)."""
    from andactl.data.datasets import resolve_data_dir
    from andactl.errors import ConfigError
    from andactl.models.loading import DEFAULT_MODEL
    from andactl.formats.storage import DEFAULT_STORAGE_DTYPE
    from andactl.pipeline import RunOptions
    from andactl.recipe import load_recipe

    recipe = load_recipe(recipe_file)
    if isinstance(recipe.passes, list) and not recipe.passes:
        raise ConfigError(f"{recipe_file}: 'passes' is empty: nothing to run (`andactl passes` lists them)")
    if recipe.eval is not None:
        from andactl.preflight import check_eval_spec

        try:
            check_eval_spec(recipe.eval)
        except ConfigError as err:
            raise ConfigError(f"{recipe_file}: {err}") from None
    opts = RunOptions(
        model=model or recipe.model or DEFAULT_MODEL, output=output or recipe.output,
        dtype=dtype or recipe.dtype or "float32", device=device or recipe.device or "cpu",
        seed=recipe.seed if recipe.seed is not None else 0, data_dir=resolve_data_dir(data_dir),
        overwrite=overwrite, quiet=cctx.obj.get("quiet", False),
        storage_dtype=recipe.storage_dtype or DEFAULT_STORAGE_DTYPE,
        stream=stream if stream is not None else recipe.stream,
        spill_activations=spill_activations if spill_activations is not None else recipe.spill_activations,
    )
    if not dry_run and opts.output is None and not recipe.eval:
        log.warning("no output directory (the recipe's 'output' or -o) and no 'eval' block: the run's result is not kept")
    run_and_report(recipe, opts, fmt, None if dry_run else recipe.eval, dry_run=dry_run, max_memory=max_memory)


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


@click.command("passes")
@format_option
def passes(fmt):
    """List the passes a recipe may use, with requirements and parameters."""
    from andactl.passbase import registry

    data = []
    for name, cls in sorted(registry().items()):
        fields = [{"name": f.name, "type": str(f.type), "default": _default(f)} for f in dataclasses.fields(cls.Config)]
        data.append({"pass": name, "requires": list(cls.requires), "provides": list(cls.provides),
                     "excludes": list(cls.excludes),
                     "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "", "params": fields})

    def human(d):
        from rich.table import Table

        t = Table(title="andactl passes")
        for col in ("pass", "requires", "provides", "excludes", "parameters (defaults)"):
            t.add_column(col)
        for p in d:
            params = ", ".join(f"{f['name']}={f['default']}" for f in p["params"])
            t.add_row(p["pass"], *(", ".join(p[k]) or "-" for k in ("requires", "provides", "excludes")), params)
        stdout_console().print(t)

    emit(data, fmt, human)


COMMANDS = [run, passes]
