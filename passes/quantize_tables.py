"""Pass ``quantize_tables``: the LM head and the token embedding as group-wise INT8/INT4 tables.

Runs last (after the Anda search and packing, which measure the model with float tables). A tied
head and embedding quantized with the same bits are quantized once and stored once (the head reads
the embedding's codes); any other combination unties them. A sliced tied model's one table
(andactl/models/tied_head.py) is quantized once too, the embedding reading its prefix; with
different bits the embedding is split off first. ``tie_word_embeddings`` is set to false in the
config because the quantized modules are no longer HF's tied Parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from andactl.errors import ConfigError
from andactl.formats import table_quant as tq
from andactl.models.tied_head import is_tied_head
from andactl.passbase import Pass, PassConfig, register_pass


@dataclass
class QuantizeTablesConfig(PassConfig):
    """``head`` / ``embeddings``: int8, int4 or none; ``group_size`` along the input (hidden) dim;
    ``method``: ``rtn`` (round to nearest) or ``gptq`` (the head by GPTQ on the final hidden states
    of the calibration text; a tied table shared with the embedding gets the same codes)."""

    head: str = "int8"
    embeddings: str = "int8"
    group_size: int = tq.DEFAULT_TABLE_GROUP
    clip: bool = False  # per-group MSE-best clipping of the scale (formats/table_quant.py)
    method: str = "rtn"
    damp: float = 0.01

    def validate(self) -> None:
        tq.parse_table_bits(self.head)
        tq.parse_table_bits(self.embeddings)
        if self.group_size < 1:
            raise ConfigError(f"group_size must be >= 1, got {self.group_size}")
        if self.method not in TABLE_METHODS:
            raise ConfigError(f"unknown table method {self.method!r}; choose {' or '.join(TABLE_METHODS)}")
        if self.method == "gptq" and self.head == "none":
            raise ConfigError("table method gptq quantizes the LM head: it needs --head int8 or int4")
        if self.method == "gptq" and self.clip:
            raise ConfigError("table method gptq chooses its own scales: it cannot be combined with clipping")
        if not 0.0 < self.damp < 1.0:
            raise ConfigError(f"damp must be in (0, 1), got {self.damp}")


TABLE_METHODS = ("rtn", "gptq")


def _is_tied(model) -> bool:
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    w_e, w_h = getattr(emb, "weight", None), getattr(head, "weight", None)
    return w_e is not None and w_h is not None and w_e.data_ptr() == w_h.data_ptr() and w_e.shape == w_h.shape


@register_pass
class QuantizeTables(Pass):
    """Replace the head / token embedding by QuantizedHead / QuantizedEmbedding."""

    name = "quantize_tables"
    Config = QuantizeTablesConfig
    provides = ("quantized_tables",)

    @property
    def streams(self) -> bool:  # type: ignore[override]
        """Layer-wise streaming: RTN reads only the resident embeddings / head; GPTQ runs the whole
        model forward on the calibration text, so it needs the layers in memory."""
        return self.config.method != "gptq"
    description = "INT8/INT4 group-wise LM head and embedding table"

    def run(self, ctx) -> dict:
        from andactl.models.quantized_tables import QuantizedEmbedding, QuantizedHead

        cfg = self.config
        model = ctx.model
        hb, eb = tq.parse_table_bits(cfg.head), tq.parse_table_bits(cfg.embeddings)
        if "quantized_tables" in ctx.provided:
            raise ConfigError("the head and embeddings are already quantized")
        if hb is None and eb is None:
            return {"head": "none", "embeddings": "none"}
        if is_tied_head(model.get_output_embeddings()):
            return self._one_table(ctx, hb, eb)
        tied = _is_tied(model)
        emb, head = model.get_input_embeddings(), model.get_output_embeddings()
        if not isinstance(emb, torch.nn.Embedding) or not hasattr(head, "weight"):
            raise ConfigError("quantize_tables needs an nn.Embedding token embedding and a linear head")
        record = {"pass": "quantize_tables", "group_size": cfg.group_size, "shared": bool(tied and hb == eb),
                  "embeddings": None, "head": None}
        before = _table_bytes(emb, head, tied)
        head_table, stats = (self._gptq_head(ctx, head, hb) if cfg.method == "gptq" else (None, None))
        if eb and record["shared"] and head_table is not None:
            new_emb = QuantizedEmbedding.from_table(emb, eb, cfg.group_size, *head_table)
        else:
            new_emb = QuantizedEmbedding.from_float(emb, eb, cfg.group_size, cfg.clip) if eb else None
        if new_emb is not None:
            record["embeddings"] = _emb_record(new_emb, emb.weight.dtype)
        if hb:
            if record["shared"]:
                new_head = QuantizedHead.sharing(new_emb)
            elif head_table is not None:
                new_head = QuantizedHead.from_table(head, hb, cfg.group_size, *head_table)
            else:
                new_head = QuantizedHead.from_float(head, hb, cfg.group_size, cfg.clip)
            record["head"] = _head_record(new_head, head.weight.dtype)
            model.set_output_embeddings(new_head)
        elif tied:
            head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
        if new_emb is not None:
            model.set_input_embeddings(new_emb)
        return self._finish(ctx, record, before, stats)

    def _one_table(self, ctx, hb: int | None, eb: int | None) -> dict:
        """A TiedHead model (one float table for head and embedding, andactl/models/tied_head.py): with
        equal bits the table is quantized once and the embedding keeps reading its prefix; otherwise
        the embedding is split off (quantized from the float prefix, or kept float) first."""
        from torch import nn

        from andactl.models.quantized_tables import QuantizedEmbedding, QuantizedHead

        cfg, model = self.config, ctx.model
        head, emb = model.get_output_embeddings(), model.get_input_embeddings()
        table = head.table
        before = table.weight.numel() * table.weight.element_size()
        record = {"pass": "quantize_tables", "group_size": cfg.group_size, "shared": False,
                  "one_table": hb is not None and hb == eb, "embeddings": None, "head": None}
        if not record["one_table"]:
            plain = nn.Embedding.from_pretrained(emb.weight.detach().clone(), freeze=True, padding_idx=emb.padding_idx)
            dtype = plain.weight.dtype
            if eb:
                plain = QuantizedEmbedding.from_float(plain, eb, cfg.group_size, cfg.clip)
                record["embeddings"] = _emb_record(plain, dtype)
            else:
                record["float_embedding"] = {"rows": plain.num_embeddings, "cols": plain.embedding_dim,
                                             "dtype": _dtype_name(dtype)}
            model.set_input_embeddings(plain)
        stats = None
        if hb:
            if cfg.method == "gptq":
                codes, stats = self._gptq_head(ctx, head, hb)
                new_table = QuantizedHead.from_table(table, hb, cfg.group_size, *codes)
            else:
                new_table = QuantizedHead.from_float(table, hb, cfg.group_size, cfg.clip)
            record["head"] = _head_record(new_table, table.weight.dtype)
            head.table = new_table
        return self._finish(ctx, record, before, stats)

    def _finish(self, ctx, record: dict, before: int, stats: dict | None) -> dict:
        """Records ``record`` (structure, typed records, artifact metadata) and the pass's result."""
        from andactl.formats.records import TablesRecord

        cfg = self.config
        ctx.model.config.tie_word_embeddings = False
        ctx.structure.append(record)
        ctx.records.tables = TablesRecord.from_dict(record)
        after = sum(tq.stored_bytes(r["rows"], r["cols"], r["bits"], cfg.group_size) for r in [record["embeddings"]] if r)
        if record["head"] and not record["shared"]:
            h = record["head"]
            after += tq.stored_bytes(h["out"], h["in"], h["bits"], cfg.group_size)
        fe = record.get("float_embedding")
        if fe:
            after += fe["rows"] * fe["cols"] * getattr(torch, fe["dtype"]).itemsize
        one = bool(record.get("one_table"))
        ctx.artifact_meta["table_quantization"] = {"head": cfg.head, "embeddings": cfg.embeddings,
                                                   "group_size": cfg.group_size, "shared": record["shared"] or one,
                                                   "clip": cfg.clip, "method": cfg.method}
        return {"head": cfg.head, "embeddings": cfg.embeddings, "shared": record["shared"] or one, "method": cfg.method,
                "float_bytes_before": before, "quantized_bytes": after, **({"gptq": stats} if stats else {})}

    def _gptq_head(self, ctx, head, bits: int) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        """(packed codes, fp16 scales) of the head's vocabulary matrix by GPTQ on its inputs at the
        calibration positions that predict a token (the final hidden states, through a TiedHead's map;
        the model as it is: packed linears included)."""
        from andactl.passes.anda_fakequant import predicting_hidden
        from andactl.passes.gptq import HessianAccumulator, gptq_table
        from andactl.passes.recover_loss import split_head

        matrix = head.table if is_tied_head(head) else head
        acc = HessianAccumulator(matrix.weight.shape[1], ctx.device)
        for h in predicting_hidden(ctx.model, ctx.calibration(), ctx.device):
            acc.add(split_head(head, h)[0].to(h.dtype))  # (casts itself: xᵀx in float32, float64 for float64)
        acc.all_reduce()
        tokens = acc.n
        codes, scale, stats = gptq_table(matrix.weight.detach(), acc.take_H(), bits, self.config.group_size,
                                         self.config.damp)
        stats["calibration_tokens"] = tokens
        return (tq.pack_codes(codes, bits), scale), stats

    @classmethod
    def rebuild(cls, model, adapter, record: dict) -> None:
        """Quantized modules at the recorded shapes (placeholder codes) in place of the float ones."""
        from andactl.models.quantized_tables import install_tables

        install_tables(model, record)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _emb_record(q, dtype: torch.dtype) -> dict:
    """The record of a QuantizedEmbedding ``q`` that replaced a float table of ``dtype``."""
    return {"bits": q.bits, "rows": q.num_embeddings, "cols": q.embedding_dim, "padding_idx": q.padding_idx,
            "dtype": _dtype_name(dtype)}


def _head_record(q, dtype: torch.dtype) -> dict:
    """The record of a QuantizedHead ``q`` that replaced a float head (or table) of ``dtype``."""
    return {"bits": q.bits, "in": q.in_features, "out": q.out_features, "bias": q.bias is not None,
            "dtype": _dtype_name(dtype)}


def _table_bytes(emb, head, tied: bool) -> int:
    n = emb.weight.numel() * emb.weight.element_size()
    return n if tied else n + head.weight.numel() * head.weight.element_size()
