"""Runs a sweep, reusing work: one slicing per ratio, one INT4 weight quantization (GPTQ/RTN) per
(sliced model, method), then per tolerance the Anda search, packing, table quantization, the
artifact write and one perplexity evaluation. Every finished point is a JSON file under
``DIR/points``; a rerun skips points whose file exists with the same settings (resumable).

Layout of DIR: ``sliced/r<ratio>/`` (sliced artifacts), ``artifacts/<key>/`` (one artifact per
point), ``points/<key>.json`` and ``points/base.json`` (the source model's perplexity),
``sweep.json`` and ``pareto.png`` (written by ``report``), and ``MARKER`` (written first: it makes
DIR a sweep directory, which a later sweep may resume; any other non-empty folder is refused).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from andactl.formats.table_quant import DEFAULT_TABLE_GROUP
from andactl.passes.quantize_weights import QuantizeWeightsConfig
from andactl.passes.search_losses import DEFAULT_SEARCH_LOSS
from andactl.sweep.grid import SweepPoint
from andactl.sweep.recipes import point_recipe, point_steps, slice_steps, weight_steps

log = logging.getLogger("andactl")


@dataclass
class SweepSettings:
    """Everything besides the grid axes that changes a point's result (part of its record)."""

    model: str
    windows: int
    seqlen: int = 2048
    calibration: dict = field(default_factory=dict)
    budget: str = "energy"
    max_evals: int = 32
    group_size: int = QuantizeWeightsConfig.group_size
    symmetric: bool = QuantizeWeightsConfig.symmetric
    storage_dtype: str = "fp16"
    head: str = "int8"
    embeddings: str = "int8"
    dtype: str = "float32"
    backend: str = "auto"
    search_loss: str = DEFAULT_SEARCH_LOSS
    table_group: int = DEFAULT_TABLE_GROUP
    table_clip: bool = False
    shortcuts: str = "float"
    recover_steps: int = 40
    table_method: str = "rtn"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def matches(self, saved: dict | None) -> bool:
        """True when ``saved`` (a record's settings) are these settings; a key the record lacks
        (written by an andactl without that setting) counts as its default."""
        if not isinstance(saved, dict):
            return False
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING}
        return {**defaults, **saved} == self.to_dict()


MARKER = "andactl-sweep.json"
# what a sweep directory written before MARKER existed holds (resumable too)
_EARLIER_SIGNS = ("sweep.json", "points/base.json")


def check_sweep_dir(out: Path) -> Path:
    """The resolved sweep directory, or ConfigError (one line, nothing touched) when ``out`` is a
    file, an andactl artifact, or a non-empty folder that is not a sweep directory: a sweep adds
    folders and files to DIR, and never to a folder of the user's."""
    from andactl.errors import ConfigError
    from andactl.formats.artifact import is_artifact

    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()) or any((out / f).is_file() for f in (MARKER, *_EARLIER_SIGNS)):
        return out
    what = "an andactl artifact" if is_artifact(out) else "not a sweep directory"
    raise ConfigError(f"sweep directory {out} is not empty and is {what}; name a new directory "
                      "(a sweep adds its files there; an earlier sweep's directory resumes)")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    """Atomic: a half-written point never looks finished."""
    from andactl.formats.output_dir import write_atomic

    write_atomic(path, json.dumps(data, indent=2) + "\n")


_SHARED = ("tokenizer", "_calibration", "device", "dtype", "data_dir", "calibration_config")


def _fork(ctx):
    """An independent copy of a PassContext for one point: model and adapter deep-copied together
    (the adapter keeps pointing at its own model), INT4 weights shared read-only (pack only reads
    them), calibration data and tokenizer shared, every other field deep-copied."""
    model, adapter = copy.deepcopy((ctx.model, ctx.adapter))
    fields = {f.name: copy.deepcopy(getattr(ctx, f.name)) for f in dataclasses.fields(ctx)
              if f.init and f.name not in (*_SHARED, "model", "adapter", "int4_weights")}
    return dataclasses.replace(ctx, model=model, adapter=adapter, int4_weights=dict(ctx.int4_weights), **fields)


class SweepRunner:
    """Computes the missing points of a grid into ``out`` (see module docstring)."""

    def __init__(self, out: Path, settings: SweepSettings, data_dir: Path | None, quiet: bool = True):
        self.out, self.s, self.data_dir, self.quiet = Path(out), settings, data_dir, quiet
        self._rows = None

    # --- records ------------------------------------------------------------------------------
    def point_file(self, key: str) -> Path:
        return self.out / "points" / f"{key}.json"

    def finished(self, point: SweepPoint) -> dict | None:
        rec = _read_json(self.point_file(point.key))
        return rec if rec and self.s.matches(rec.get("settings")) and (self.out / "artifacts" / point.key).is_dir() else None

    def _ppl(self, model, tokenizer) -> float:
        from andactl.data.datasets import load_text_rows
        from andactl.evaluation.perplexity import perplexity

        if self._rows is None:
            self._rows = load_text_rows("wikitext2", "test", self.data_dir)
        return perplexity(model, tokenizer, self._rows, seqlen=self.s.seqlen, limit=self.s.windows).ppl

    def base(self) -> dict:
        """The source model's perplexity on the same windows (cached in points/base.json)."""
        f = self.out / "points" / "base.json"
        rec = _read_json(f)
        if rec and self.s.matches(rec.get("settings")):
            return rec
        from andactl.models.loading import load_model

        t0 = time.perf_counter()
        loaded = load_model(self.s.model, self.s.dtype)
        rec = {"key": "base", "ppl": self._ppl(loaded.model, loaded.tokenizer), "settings": self.s.to_dict(),
               "seconds": round(time.perf_counter() - t0, 1)}
        _write_json(f, rec)
        return rec

    # --- work ---------------------------------------------------------------------------------
    def check(self, points: list[SweepPoint]) -> None:
        """AndaError (one line; nothing written, no weights read) for any input a point would fail
        on later: every point's recipe parsed and checked against what the source already is, the
        model source, the calibration data, recovery and evaluation lengths against the model's
        context, and the evaluation text (read here, once, for every evaluation)."""
        from andactl.data.datasets import load_text_rows
        from andactl.manager import PassManager
        from andactl.preflight import check_seqlen, model_source, preflight, source_capabilities

        have = source_capabilities(self.s.model)
        train_seqlens = set()
        for p in points:
            manager = PassManager.from_recipe(point_recipe(p, self.s), [])
            manager.check(have)
            train_seqlens.update(int(s["seqlen"]) for s in manager.resolved_recipe() if s["pass"] == "recover")
        preflight(self.s.model, None, False, self.data_dir, self.s.calibration, train_seqlens=sorted(train_seqlens))
        check_seqlen(model_source(self.s.model)[1], self.s.seqlen, "--seqlen")
        self._rows = load_text_rows("wikitext2", "test", self.data_dir)

    def run(self, points: list[SweepPoint]) -> tuple[list[dict], int]:
        """(records of every point in ``points``, how many were reused from an earlier run); every
        input is checked (``check``) before DIR is created or anything is loaded."""
        check_sweep_dir(self.out)
        self.check(points)
        from andactl import __version__

        _write_json(self.out / MARKER, {"andactl_version": __version__, "model": self.s.model})
        base = self.base()
        records, reused = {}, 0
        for p in points:
            rec = self.finished(p)
            if rec:
                records[p.key] = rec
                reused += 1
        todo = [p for p in points if p.key not in records]
        for ratio, recover in sorted({(p.ratio, p.recover) for p in todo}):
            source, slice_seconds = self._sliced(ratio, recover)
            for method in sorted({p.weight_method for p in todo if (p.ratio, p.recover) == (ratio, recover)}):
                group = [p for p in todo if (p.ratio, p.recover, p.weight_method) == (ratio, recover, method)]
                for rec in self._quantize_group(source, ratio, method, group, slice_seconds, base["ppl"]):
                    records[rec["key"]] = rec
        return [records[p.key] for p in points], reused

    def _sliced(self, ratio: float, recover: str = "none") -> tuple[str, float]:
        """Source of the points at ``ratio``: the model itself (0) or its sliced artifact (made once
        per ratio and recovery; a recovered one is sliced and recovered in one recipe)."""
        if ratio == 0:
            return self.s.model, 0.0
        name = f"r{ratio:g}" + ("" if recover == "none" else f"-{recover}")
        out = self.out / "sliced" / name
        info = _read_json(self.out / "sliced" / f"{name}.json")
        if info and self.s.matches(info.get("settings")) and out.is_dir():
            return str(out), info["seconds"]
        from andactl.pipeline import RunOptions, run_recipe
        from andactl.recipe import Recipe

        log.info("sweep: slicing at ratio %g%s", ratio, "" if recover == "none" else f", then recovery ({recover})")
        t0 = time.perf_counter()
        recipe = Recipe(passes=slice_steps(ratio, recover, self.s.recover_steps), calibration=self.s.calibration)
        opts = RunOptions(model=self.s.model, output=str(out), dtype=self.s.dtype, seed=self.s.calibration.get("seed", 0),
                          data_dir=self.data_dir, overwrite=True, quiet=self.quiet, storage_dtype="fp32")
        run_recipe(recipe, opts)
        seconds = round(time.perf_counter() - t0, 1)
        _write_json(self.out / "sliced" / f"{name}.json", {"settings": self.s.to_dict(), "seconds": seconds})
        return str(out), seconds

    def _quantize_group(self, source: str, ratio: float, method: str, group: list[SweepPoint],
                        slice_seconds: float, base_ppl: float) -> list[dict]:
        """INT4 weights once for ``source``, then every tolerance of ``group`` on a copy."""
        from andactl.formats import cost_models
        from andactl.manager import PassManager
        from andactl.models.loading import load_model
        from andactl.pipeline import RunOptions, calibration_config, make_context, save_context

        log.info("sweep: %s INT4 weights of %s", method, source)
        t0 = time.perf_counter()
        loaded = load_model(source, self.s.dtype)
        opts = RunOptions(model=source, output=None, dtype=self.s.dtype, seed=self.s.calibration.get("seed", 0),
                          data_dir=self.data_dir, quiet=self.quiet)
        ctx = make_context(loaded, opts, calibration_config(self.s.calibration))
        from andactl.formats.byte_accounting import block_linear_parameters
        from andactl.models.stats import count_parameters

        ctx.artifact_meta.update({
            "dense_parameters": loaded.meta.get("dense_parameters") or count_parameters(loaded.model),
            "dense_block_linear_parameters": loaded.meta.get("dense_block_linear_parameters")
            or block_linear_parameters(loaded.adapter)})
        shape = cost_models.ModelShape.from_adapter(loaded.adapter, tokens=1)
        weights = weight_steps(method, self.s)
        PassManager.from_recipe(weights).run(ctx)
        weight_seconds = round(time.perf_counter() - t0, 1)
        records = []
        for p in group:
            records.append(self._point(ctx, p, shape, weights, slice_seconds, weight_seconds, base_ppl, save_context))
        return records

    def _point(self, ctx, p: SweepPoint, shape, weights, slice_seconds, weight_seconds, base_ppl, save_context) -> dict:
        from andactl.kernels.backend import set_model_backend
        from andactl.formats import cost_models
        from andactl.formats.byte_accounting import account, dense_references
        from andactl.manager import PassManager
        from andactl.models.loading import load_model

        log.info("sweep: point %s", p.key)
        t0 = time.perf_counter()
        c = _fork(ctx)
        manager = PassManager.from_recipe(point_steps(p.tolerance, self.s))
        manager.run(c)
        tuple_ = c.report["search"]["tuple"]
        recipe = {"model": self.s.model, "sweep_point": p.to_dict(), "calibration": self.s.calibration,
                  "passes": weights + manager.resolved_recipe(), "storage_dtype": self.s.storage_dtype,
                  "shortcuts": self.s.shortcuts}
        art = self.out / "artifacts" / p.key
        save_context(c, str(art), recipe, overwrite=True, base_model=self.s.model, storage_dtype=self.s.storage_dtype,
                     shortcuts=self.s.shortcuts)
        quant_seconds = time.perf_counter() - t0
        del c
        loaded = load_model(str(art), self.s.dtype)
        backend = set_model_backend(loaded.model, self.s.backend, "cpu")
        ppl = self._ppl(loaded.model, loaded.tokenizer)
        acc = account(art)
        refs = dense_references(loaded.meta["dense_parameters"], loaded.meta.get("dense_block_linear_parameters"))
        costs = {b: cost_models.cost(b, tuple_, shape) for b in cost_models.BUDGETS}
        rec = {
            "key": p.key, **p.to_dict(), "tuple": tuple_, "search_loss": loaded.meta.get("search", {}).get("loss_kind"),
            "search_loss_value": loaded.meta.get("search", {}).get("loss"),
            "bytes": acc["file_bytes"], "bytes_by_category": acc["by_category"],
            **{f"ratio_vs_{k}": round(acc["file_bytes"] / v, 4) for k, v in refs.items()},
            **costs, **{f"{b}_reduction_vs_a16": round(cost_models.reduction_vs(b, tuple_, shape), 3) for b in cost_models.BUDGETS},
            "ppl": ppl, "base_ppl": base_ppl, "ppl_increase": ppl / base_ppl - 1, "windows": self.s.windows,
            "seconds": {"slice_shared": slice_seconds, "weights_shared": weight_seconds,
                        "search_pack_save": round(quant_seconds, 1), "eval": round(time.perf_counter() - t0 - quant_seconds, 1)},
            "backend": backend, "artifact": str(art), "settings": self.s.to_dict(),
        }
        _write_json(self.point_file(p.key), rec)
        return rec
