"""SliceGPT step 3: physically cut the rotated model to the dims its rotation recorded."""
from __future__ import annotations

from dataclasses import dataclass


from andactl.errors import ConfigError
from andactl.passbase import QUANTIZED, Pass, PassConfig, register_pass
from andactl.models.slicegpt_layer import count_parameters
from andactl.formats.records import SlicingRecord
from andactl.models.file_backed import own_file_backed
from andactl.models.slice_count import recorded_tied_source
from andactl.models.structure import apply_dims, dims_record
from andactl.models.tied_head import centred_source, tie_head

__all__ = ["Slice", "SliceConfig", "count_parameters", "apply_dims", "dims_record"]


@dataclass
class SliceConfig(PassConfig):
    """No options: the kept dims are chosen by ``rotate`` (its ``ratio``/``round_to``)."""


def _latest_plan(ctx) -> dict:
    for rec in reversed(ctx.structure):
        if rec.get("pass") == "rotate":
            return rec["plan"]
    raise ConfigError("slice needs the slicing plan recorded by 'rotate', and none was found")


def one_table(ctx) -> bool:
    """Whether to store the head and token embedding as one table (andactl/models/tied_head.py)."""
    return bool(recorded_tied_source(ctx.records))


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
        # the fit decides: a head that is not the token table behind a map stays untied
        centred = centred_source(ctx.adapter)
        fit = tie_head(ctx.model, record["head_in"], record["embedding_dim"], centred) if one_table(ctx) else None
        record["tied_head"] = fit is not None
        if fit is not None:
            ctx.log.info("slice: the head and the token embedding share one table%s (fit residual %.1e)",
                         " (the rows' means folded into its cut columns)" if centred else "", fit)
        apply_dims(ctx.adapter, record, ctx.layers)
        own_file_backed(ctx.model)  # the cut tensors are new: what survives lets the source's file mapping go
        after = count_parameters(ctx.model)
        shortcuts = sum(int(getattr(layer, n).numel()) for layer in ctx.adapter.layers() for n in layer.shortcuts)
        record["hidden_size"] = ctx.adapter.hidden_size
        ctx.structure.append(record)
        ctx.records.slicing = SlicingRecord.from_plan(ctx.adapter.hidden_size, _latest_plan(ctx), record["tied_head"])
        original = ctx.original_parameters
        result = {
            "embedding_dim": record["embedding_dim"], "head_in": record["head_in"], "tied_head": record["tied_head"],
            "parameters_original": original, "parameters_before": before,
            "parameters_after": after, "shortcut_parameters": shortcuts,
        }
        if original:
            result["parameter_fraction_of_original"] = round(after / original, 4)
        ctx.report.setdefault("slicing", {}).update(
            {"original_parameters": original, "parameters_after": after, "shortcut_parameters": shortcuts})
        return result
