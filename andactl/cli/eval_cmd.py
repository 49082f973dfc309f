"""``andactl eval``: perplexity and zero-shot accuracy of one or several models."""
from __future__ import annotations

import json
from pathlib import Path

import click

from andactl.cli.common import data_dir_option, device_option, emit, format_option, run_dtype_option
from andactl.consoles import encodable, stdout_console


def human_results(data: dict) -> None:
    """One row per model (as named on the command line), one column per task and metric; an accuracy
    carries lm-eval's standard error (± one, in points) where it gave one."""
    from rich.table import Table

    runs = data["models"] if "models" in data else [data]
    tasks = list(dict.fromkeys(t for r in runs for t in r["results"]))
    columns = [(task, m) for task in tasks for m in ("ppl", "acc", "acc_norm")
               if any(m in r["results"].get(task, {}) for r in runs)]
    table = Table(title="andactl eval")
    table.add_column("model")
    for task, m in columns:
        table.add_column(f"{task} {m}" + ("" if m == "ppl" else " %"), justify="right")
    pm, none = encodable("±", "+/-"), encodable("—", "-")
    for r in runs:
        cells = []
        for task, m in columns:
            res = r["results"].get(task, {})
            v, se = res.get(m), res.get(f"{m}_stderr")
            cells.append(none if v is None else f"{v:.3f}" if m == "ppl"
                         else f"{100 * v:.2f}" + ("" if se is None else f" {pm} {100 * se:.2f}"))
        table.add_row(r["model"], *cells)
    stdout_console().print(table)
    for r in runs:
        notes = []
        for task, res in r["results"].items():
            if "windows" in res:
                notes.append(f"{task}: {res['windows']}/{res['total_windows']} windows of {res['seqlen']}, {res['seconds']}s")
            elif "documents" in res:
                notes.append(f"{task}: {res['documents']}/{res['total_documents']} documents")
        if notes:
            stdout_console().print(f"{r['model']}: " + "; ".join(notes) + f" (dtype {r['dtype']}, backend {r['backend']})")


RAM_SHARE = 0.9  # the batch size suggested when one is refused fits this share of the available RAM by the bound


def _check_memory(source: str, kind: str, windows: int, seqlen: int, dtype: str) -> None:
    """ConfigError before any model loads when one batch of perplexity windows cannot fit in the RAM
    available now even by perplexity.least_bytes's lower bound (--batch-size 32 at 2048 tokens was
    killed by the kernel after the model had loaded). A hub id's shape is not fetched: not checked."""
    from andactl.dry_run.memory import available_bytes, loaded_model
    from andactl.errors import ConfigError
    from andactl.evaluation.perplexity import least_bytes

    loaded = loaded_model(source, kind, dtype)
    if loaded is None:
        return
    shape, element, model_bytes = loaded
    available = available_bytes()
    need = model_bytes + least_bytes(windows, seqlen, shape.vocab, element)
    if need > available:
        per_window = least_bytes(2, seqlen, shape.vocab, element) - least_bytes(1, seqlen, shape.vocab, element)
        fits = int((RAM_SHARE * available - least_bytes(0, seqlen, shape.vocab, element) - model_bytes) // per_window)
        hint = f"use --batch-size {fits} or less" if fits >= 1 else "use a shorter --seqlen"
        raise ConfigError(f"{source}: {windows} perplexity windows of {seqlen} tokens at once need at least "
                          f"{need / 1e9:.1f} GB (logits {(need - model_bytes) / 1e9:.1f}, model {model_bytes / 1e9:.2f}), "
                          f"more than the {available / 1e9:.1f} GB available: {hint}")


@click.command("eval")
@click.argument("models", nargs=-1, required=True)
@click.option("--tasks", default="wikitext2", show_default=True, help="Comma-separated: wikitext2, ptb, c4, piqa, arc_e(asy), arc_c(hallenge), hellaswag, winogrande.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Max perplexity windows / zero-shot documents per task.")
@click.option("--batch_size", "--batch-size", "batch_size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seqlen", type=click.IntRange(min=8), default=2048, show_default=True, help="Perplexity window length.")
@click.option("--output_path", "--output-path", "output_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON result here.")
@click.option("--backend", type=click.Choice(["auto", "cuda", "cpp", "reference"]), default="auto", show_default=True,
              help="Kernel backend for Anda-packed modules.")
@run_dtype_option
@device_option
@data_dir_option
@format_option
def eval_(models, tasks, limit, batch_size, seqlen, output_path, backend, dtype, device, data_dir, fmt):
    """Evaluate MODELS (alias, folder, .gguf or andactl artifact) on --tasks; several models print side by side."""
    from andactl.data.datasets import resolve_data_dir
    from andactl.evaluation.harness import parse_tasks
    from andactl.evaluation.runner import evaluate
    from andactl.kernels.backend import set_model_backend
    from andactl.models.loading import load_model, parse_device, resolve_dtype_name

    dtype = resolve_dtype_name(dtype, device)
    task_list = parse_tasks(tasks)
    ddir = resolve_data_dir(data_dir)
    from andactl.evaluation.harness import PPL_TASKS
    from andactl.preflight import check_seqlen, check_task_data, model_source

    check_task_data(task_list, ddir)
    if output_path is not None:
        from andactl.formats.output_dir import check_creatable

        output_path = output_path.expanduser().resolve()
        check_creatable(output_path, "--output-path")
    for source in models:  # every model checked before the first one loads
        kind, folder = model_source(source)
        if any(t in PPL_TASKS for t in task_list):
            check_seqlen(folder, seqlen, "--seqlen")
            if parse_device(device).type == "cpu":  # the logits live in host RAM (on a GPU its own memory decides)
                _check_memory(source, kind, min(batch_size, limit or batch_size), seqlen, dtype)
    runs = []
    progress = not click.get_current_context().obj.get("quiet", False)
    for source in models:
        loaded = load_model(source, dtype, device)
        used = set_model_backend(loaded.model, backend, device)
        results = evaluate(loaded, task_list, ddir, limit=limit, batch_size=batch_size, seqlen=seqlen, device=device,
                           progress=progress)
        runs.append({"model": source, "dtype": dtype, "backend": used, "limit": limit, "results": results})
        del loaded
    data = runs[0] if len(runs) == 1 else {"models": runs}
    emit(data, fmt, human_results)  # first: results a late write failure cannot take away
    if output_path is not None:
        from andactl.errors import ConfigError
        from andactl.formats.output_dir import write_atomic

        try:
            write_atomic(output_path, json.dumps(data, indent=2) + "\n")
        except OSError as err:
            raise ConfigError(f"could not write --output-path {output_path} ({err.strerror or err}); "
                              "the results are on stdout above") from None


COMMANDS = [eval_]
