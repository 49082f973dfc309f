"""One pipeline run: load the model, run a recipe's passes over a PassContext, write the artifact."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from andactl import __version__
from andactl.context import PassContext
from andactl.data.calibration import CalibrationConfig
from andactl.manager import PassManager
from andactl.models.loading import LoadedModel, load_model
from andactl.passbase import parse_config, registry
from andactl.recipe import Recipe

log = logging.getLogger("andactl")


@dataclass
class RunOptions:
    """Everything a run needs besides the recipe's passes (CLI flags or recipe keys)."""

    model: str
    output: str | None
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    data_dir: Path | None = None
    overwrite: bool = False
    quiet: bool = False
    storage_dtype: str = "fp16"
    shortcuts: str = "float"  # SliceGPT shortcut matrices on disk: float (storage dtype) or int8
    stream: bool | None = False  # layer-wise streaming (andactl/models/layer_store.py); None: decided from memory
    spill_activations: bool | None = False  # calibration activations on disk (andactl/models/activation_buffers.py)
    cpu_rates: dict | None = None  # dry_run.rates.cpu_flops probed in a child process (recover --minutes): not probed again


def calibration_config(params: dict) -> CalibrationConfig:
    """A validated CalibrationConfig from a recipe's ``calibration`` mapping."""
    return parse_config(CalibrationConfig, params, "calibration")  # type: ignore[arg-type]


def make_context(loaded: LoadedModel, opts: RunOptions, cal: CalibrationConfig) -> PassContext:
    """A PassContext over a loaded model; inherits provided capabilities and structure records
    from an artifact so passes can continue where an earlier run stopped."""
    torch.manual_seed(opts.seed)
    return PassContext(
        model=loaded.model, adapter=loaded.adapter, tokenizer=loaded.tokenizer,
        device=torch.device(opts.device), dtype=next(loaded.model.parameters()).dtype, seed=opts.seed,
        data_dir=opts.data_dir, calibration_config=cal, provided=set(loaded.provided),
        structure=loaded.structure, records=loaded.records, report={"source": loaded.source, "andactl_version": __version__},
        provenance=dict(loaded.meta.get("provenance", {})), quiet=opts.quiet,
    )


def run_recipe(recipe: Recipe, opts: RunOptions, instruments=None) -> tuple[PassContext, Path | None, dict]:
    """Validates the recipe, loads the model, runs the passes, writes the artifact (if ``output``).

    Nothing is written unless every pass succeeded; the artifact write itself is atomic.
    """
    from andactl.formats.storage import parse_shortcut_storage, parse_storage_dtype

    parse_storage_dtype(opts.storage_dtype)  # a bad name fails before any work
    parse_shortcut_storage(opts.shortcuts)
    manager = PassManager.from_recipe(recipe.passes, instruments)
    cal = calibration_config(recipe.calibration or {})
    from andactl import distributed

    distributed.check_world(cal.samples)  # before joining: a refused world never starts a collective
    opts.device = distributed.init_from_env(opts.device)
    distributed.agree("configuration", repr((recipe.passes, cal.to_dict(), opts.model, opts.output, opts.dtype,
                                            opts.seed, str(opts.data_dir))).encode())
    if opts.output is not None:
        from andactl.formats.output_dir import check_output

        check_output(opts.output, opts.overwrite)
    if opts.stream:
        check_streamable(manager, opts, cal)
    if opts.spill_activations and opts.output is None:
        from andactl.errors import ConfigError

        raise ConfigError("spilling calibration activations to disk needs an output directory (-o) to spill next to")
    if opts.stream or opts.spill_activations:
        from andactl.formats.output_dir import spill_directory

        with spill_directory(opts.output) as spill:
            return _run_loaded(manager, opts, cal, spill)
    return _run_loaded(manager, opts, cal, None)


def check_streamable(manager: PassManager, opts: RunOptions, cal: CalibrationConfig) -> None:
    """ConfigError (before loading) when a streamed run could not run: a pass that walks layers
    without the layer store, no output to spill next to, calibration text sampled from the model
    (which needs the whole model at once); ModelError for a source it cannot read layer by layer."""
    from andactl.data.model_text import samples_model
    from andactl.errors import ConfigError

    if samples_model(cal.dataset):
        raise ConfigError(f"calibration data '{cal.dataset}' samples text from the whole model; it cannot be combined "
                          "with layer-wise streaming (--stream)")

    for p in manager.passes:
        if not p.streams:
            settings = " with these settings" if type(p).streams else ""  # a pass that streams with others
            raise ConfigError(f"pass '{p.name}' does not support layer-wise streaming (--stream){settings}; "
                              f"passes that stream: {', '.join(sorted(n for n, c in registry().items() if c.streams))}")
    if opts.output is None:
        raise ConfigError("layer-wise streaming (--stream) needs an output directory (-o)")
    from andactl.models.loading import check_streamable_source

    check_streamable_source(opts.model)


def _run_loaded(manager: PassManager, opts: RunOptions, cal: CalibrationConfig, spill: Path | None):
    """Loads the model (layer-wise streamed with ``opts.stream``), runs the passes, writes; ``spill``:
    the run's temporary directory for spilled layers and activations (None when nothing spills)."""
    from andactl import distributed

    t0 = time.perf_counter()
    store = None
    if opts.stream:
        from andactl.models.loading import load_streamed

        loaded, store = load_streamed(opts.model, opts.dtype, opts.device, spill)
    else:
        loaded = load_model(opts.model, opts.dtype, opts.device)
    ctx = make_context(loaded, opts, cal)
    ctx.store = store
    if opts.spill_activations:
        from andactl.models.activation_buffers import ActivationBuffers

        ctx.activations = ActivationBuffers(spill / "activations")
    manager.check(ctx.provided)
    from andactl.models.stats import count_parameters

    ctx.artifact_meta["dense_parameters"] = (
        loaded.meta.get("dense_parameters") or count_parameters(loaded.model))
    from andactl.formats.byte_accounting import block_linear_parameters

    ctx.artifact_meta["dense_block_linear_parameters"] = (
        loaded.meta.get("dense_block_linear_parameters") or block_linear_parameters(loaded.adapter))
    ctx.report["load_seconds"] = round(time.perf_counter() - t0, 2)
    ctx.report["streamed"] = store is not None
    ctx.report["activations_spilled"] = bool(opts.spill_activations)
    records = manager.run(ctx)
    resolved = {
        "model": opts.model, "dtype": opts.dtype, "device": opts.device, "seed": opts.seed,
        "calibration": cal.to_dict(), "passes": manager.resolved_recipe(), "storage_dtype": opts.storage_dtype,
    }
    ctx.provenance.setdefault("steps", []).append(
        {"source": opts.model, "passes": [r["pass"] for r in records], "seed": opts.seed, "calibration": cal.to_dict()}
    )
    path = None
    if opts.output is not None and distributed.is_main():  # rank 0 alone writes
        path = save_context(ctx, opts.output, resolved, opts.overwrite, base_model=loaded.meta.get("base_model", opts.model),
                            storage_dtype=opts.storage_dtype, shortcuts=opts.shortcuts)
    distributed.finish()
    return ctx, path, resolved


def save_context(ctx: PassContext, output: str, recipe: dict, overwrite: bool, base_model: str,
                 storage_dtype: str = "fp16", shortcuts: str = "float") -> Path:
    """Writes ``ctx.model`` as an artifact with its structure records and report."""
    from andactl.formats.artifact import save_artifact

    meta = {
        "base_model": base_model,
        "history": ctx.structure,
        "provides": sorted(ctx.provided),
        "provenance": ctx.provenance,
        **ctx.artifact_meta,
    }
    return save_artifact(output, ctx.model, ctx.tokenizer, meta, recipe, _jsonable_report(ctx.report),
                         records=ctx.records, overwrite=overwrite, extra_files=ctx.attachments,
                         storage_dtype=storage_dtype, shortcuts=shortcuts,
                         store=ctx.store if getattr(ctx.store, "streamed", False) else None)


def _jsonable_report(report: dict) -> dict:
    return dict(report)
