"""What a run may use of this machine's memory: ``--max-memory`` checked against the estimate, the
warning when the estimate exceeds what is available, and the choice to stream or spill."""
from __future__ import annotations

import logging
from pathlib import Path

from andactl.data.model_text import samples_model
from andactl.dry_run.estimate import estimate
from andactl.errors import ConfigError, ModelError

log = logging.getLogger("andactl")

STREAM_RAM_SHARE = 0.8  # default --max-memory: this share of MemAvailable


def check_max_memory(report: dict, max_memory_gb: float) -> None:
    """ConfigError naming the estimated need and the pass that needs it when the estimated peak
    host RAM exceeds ``max_memory_gb``."""
    worst = max(report["passes"], key=lambda r: r["host_ram_gb"])
    if worst["host_ram_gb"] <= max_memory_gb:
        return
    if report.get("streamed"):
        raise ConfigError(f"--max-memory {max_memory_gb:g} GB is below what a layer-wise streamed run needs: "
                          f"{worst['host_ram_gb']:.2f} GB in pass '{worst['pass']}' (one layer {report['layer_gb']:.2f} GB "
                          "+ embeddings/head + calibration; see --dry-run --stream)")
    hint = worst.get("hint", "--stream reads one layer at a time where the passes allow it")
    raise ConfigError(f"--max-memory {max_memory_gb:g} GB is below the estimated peak host RAM of this run: "
                      f"{worst['host_ram_gb']:.2f} GB in pass '{worst['pass']}' (see --dry-run; {hint})")


def over_memory_warning(recipe, opts) -> str | None:
    """A one-line warning when this run's estimated peak host RAM exceeds the RAM the kernel
    reports available (MemAvailable), with the cheaper way where the estimate knows one; None
    when it fits or cannot be estimated. Reads no weights."""
    try:
        report = estimate(recipe, opts, check_disk=False, timing=False)
    except (ConfigError, ModelError):
        return None
    available = default_max_memory_gb() / STREAM_RAM_SHARE
    worst = max(report["passes"], key=lambda r: r["host_ram_gb"])
    if worst["host_ram_gb"] <= available:
        return None
    hint = f"; {worst['hint']}" if "hint" in worst else ""
    return (f"estimated peak host RAM {worst['host_ram_gb']:.2f} GB (pass '{worst['pass']}') exceeds the "
            f"{available:.2f} GB available: the run may be killed{hint} (see --dry-run)")


def default_max_memory_gb() -> float:
    """The memory a run may use when --max-memory is not given: STREAM_RAM_SHARE of the RAM the
    kernel reports available (MemAvailable), read at run time."""
    return STREAM_RAM_SHARE * available_bytes() / 1e9


def available_bytes() -> float:
    """The RAM the kernel reports available now (MemAvailable); infinity where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return float("inf")


def loaded_model(source: str, kind: str, dtype: str):
    """(shape, the run dtype's element size, the bytes the loaded model holds at least) of a model
    source from its config, or None for a hub id (its config is not fetched for a memory check). At
    least: an artifact's stored weights (packed INT4 stays packed), any other source's parameters at
    the run dtype."""
    if kind == "hub":
        return None
    from andactl.dry_run.shape import model_shape
    from andactl.models.loading import DTYPES

    shape, element = model_shape(source), DTYPES[dtype].itemsize
    return shape, element, shape.weights_on_disk if kind == "artifact" else shape.parameters * element


def can_stream(recipe, opts) -> bool:
    """Whether ``recipe`` on ``opts`` could run layer-wise streamed (every pass streams, an output
    to spill next to, a local HF folder / GGUF / alias source, calibration text not sampled from
    the model); reads no weights."""
    from andactl.manager import PassManager
    from andactl.models.loading import streamable_source

    if samples_model((recipe.calibration or {}).get("dataset", "")):
        return False  # sampling calibration text needs the whole model
    passes = PassManager.from_recipe(recipe.passes, []).passes
    return bool(passes) and all(p.streams for p in passes) and opts.output is not None and streamable_source(opts.model)


def plan_memory(recipe, opts, max_memory: float | None, wanted: bool) -> dict | None:
    """Decides ``opts.stream`` when it is None (streamed when the in-memory estimate exceeds
    ``max_memory``, default ``default_max_memory_gb()``, and the run can stream) and
    ``opts.spill_activations`` when it is None (spilled when the run still exceeds that limit and
    would fit with its calibration activations on disk), then returns the
    estimate of the run as it will happen (None when not ``wanted`` and no estimate was needed);
    ConfigError when the estimate exceeds an explicit ``max_memory``. Reads no weights."""
    if opts.stream:  # asked for: refused here as the run itself refuses it, so a dry run never plans it
        from andactl.manager import PassManager
        from andactl.pipeline import calibration_config, check_streamable

        check_streamable(PassManager.from_recipe(recipe.passes, []), opts, calibration_config(recipe.calibration or {}))
    limit = max_memory if max_memory is not None else default_max_memory_gb()
    switched = None
    if opts.stream is None:
        opts.stream = False
        if can_stream(recipe, opts):
            peak = estimate(recipe, opts, check_disk=False, timing=False)["peak_host_ram_gb"]
            if peak > limit:
                switched, opts.stream = peak, True
    if getattr(opts, "spill_activations", False) is None:  # spill the calibration only when it is what does not fit
        opts.spill_activations = False
        if opts.output is not None and (opts.model in _aliases() or Path(opts.model).expanduser().exists()):
            report = estimate(recipe, opts, check_disk=False, timing=False)
            peak = report["peak_host_ram_gb"]
            opts.spill_activations = bool(peak > limit and peak - report["calibration_gb"] <= limit)
    if not (wanted or max_memory is not None or opts.stream or opts.spill_activations):
        return None  # an in-memory run nobody asked to check: preflight checks the disk
    # the run as it will happen (ConfigError when the disk is short); rates probed only for a dry run
    report = estimate(recipe, opts, timing=wanted, rates=getattr(opts, "cpu_rates", None) if wanted else None)
    if max_memory is not None:
        check_max_memory(report, max_memory)
    if switched is not None and not wanted:
        log.info("estimated peak host RAM %.2f GB (in memory) exceeds %.2f GB: streaming layer by layer", switched, limit)
    return report


def _aliases() -> dict:
    from andactl.models.loading import ALIASES

    return ALIASES
