"""SliceGPT step 3: physically cut the rotated model to the dims its rotation recorded."""
from __future__ import annotations

from dataclasses import dataclass


from andactl.errors import ConfigError
from andactl.passbase import QUANTIZED, Pass, PassConfig, register_pass
from andactl.models.slicegpt_layer import count_parameters
from andactl.formats.records import SlicingRecord
from andactl.models.structure import apply_dims, dims_record

__all__ = ["Slice", "SliceConfig", "count_parameters", "apply_dims", "dims_record"]


@dataclass
class SliceConfig(PassConfig):
    """No options: the kept dims are chosen by ``rotate`` (its ``ratio``/``round_to``)."""


def _latest_plan(ctx) -> dict:
    for rec in reversed(ctx.structure):
        if rec.get("pass") == "rotate":
            return rec["plan"]
    raise ConfigError("slice needs the slicing plan recorded by 'rotate', and none was found")


@register_pass
class Slice(Pass):
    """Slicing. Invariant: shapes match the recorded dims; shortcut matrices are counted as weights."""

    name = "slice"
    Config = SliceConfig
    requires = ("rotated",)
    provides = ("sliced",)
    excludes = ("sliced", *QUANTIZED)
    streams = True
    description = "cut rotated rows/columns to the recorded dims (SliceGPT)"

    def run(self, ctx) -> dict:
        record = dims_record(_latest_plan(ctx), ctx.adapter.parallel_blocks)
        before = count_parameters(ctx.model)
        apply_dims(ctx.adapter, record, ctx.layers)
        after = count_parameters(ctx.model)
        shortcuts = sum(int(getattr(layer, n).numel()) for layer in ctx.adapter.layers() for n in layer.shortcuts)
        record["hidden_size"] = ctx.adapter.hidden_size
        ctx.structure.append(record)
        ctx.records.slicing = SlicingRecord.from_plan(ctx.adapter.hidden_size, _latest_plan(ctx))
        original = ctx.original_parameters
        result = {
            "embedding_dim": record["embedding_dim"], "head_in": record["head_in"],
            "parameters_original": original, "parameters_before": before,
            "parameters_after": after, "shortcut_parameters": shortcuts,
        }
        if original:
            result["parameter_fraction_of_original"] = round(after / original, 4)
        ctx.report.setdefault("slicing", {}).update(
            {"original_parameters": original, "parameters_after": after, "shortcut_parameters": shortcuts})
        return result
