"""Pass ``quantize_tables``: the LM head and the token embedding as group-wise INT8/INT4 tables.

Runs last (after the Anda search and packing, which measure the model with float tables). A tied
head and embedding quantized with the same bits are quantized once and stored once (the head reads
the embedding's codes); any other combination unties them. ``tie_word_embeddings`` is set to
false in the config because the quantized modules are no longer HF's tied Parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from andactl.errors import ConfigError
from andactl.formats import table_quant as tq
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
            record["embeddings"] = {"bits": eb, "rows": new_emb.num_embeddings, "cols": new_emb.embedding_dim,
                                    "padding_idx": new_emb.padding_idx, "dtype": str(emb.weight.dtype).replace("torch.", "")}
        if hb:
            if record["shared"]:
                new_head = QuantizedHead.sharing(new_emb)
            elif head_table is not None:
                new_head = QuantizedHead.from_table(head, hb, cfg.group_size, *head_table)
            else:
                new_head = QuantizedHead.from_float(head, hb, cfg.group_size, cfg.clip)
            record["head"] = {"bits": hb, "in": new_head.in_features, "out": new_head.out_features,
                              "bias": new_head.bias is not None, "dtype": str(head.weight.dtype).replace("torch.", "")}
            model.set_output_embeddings(new_head)
        elif tied:
            head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
        if new_emb is not None:
            model.set_input_embeddings(new_emb)
        model.config.tie_word_embeddings = False
        ctx.structure.append(record)
        from andactl.formats.records import TablesRecord

        ctx.records.tables = TablesRecord.from_dict(record)
        after = sum(tq.stored_bytes(r["rows"], r["cols"], r["bits"], cfg.group_size) for r in [record["embeddings"]] if r)
        if record["head"] and not record["shared"]:
            after += tq.stored_bytes(record["head"]["out"], record["head"]["in"], hb, cfg.group_size)
        ctx.artifact_meta["table_quantization"] = {"head": cfg.head, "embeddings": cfg.embeddings,
                                                   "group_size": cfg.group_size, "shared": record["shared"],
                                                   "clip": cfg.clip, "method": cfg.method}
        return {"head": cfg.head, "embeddings": cfg.embeddings, "shared": record["shared"], "method": cfg.method,
                "float_bytes_before": before, "quantized_bytes": after, **({"gptq": stats} if stats else {})}

    def _gptq_head(self, ctx, head, bits: int) -> tuple[tuple[torch.Tensor, torch.Tensor], dict]:
        """(packed codes, fp16 scales) of the head by GPTQ on the final hidden states of the
        calibration positions that predict a token (the model as it is: packed linears included)."""
        from andactl.passes.anda_fakequant import predicting_hidden
        from andactl.passes.gptq import HessianAccumulator, gptq_table

        acc = HessianAccumulator(head.weight.shape[1], ctx.device)
        for h in predicting_hidden(ctx.model, ctx.calibration(), ctx.device):
            acc.add(h)  # (casts itself: xᵀx in float32, float64 for float64 inputs)
        acc.all_reduce()
        tokens = acc.n
        codes, scale, stats = gptq_table(head.weight.detach(), acc.take_H(), bits, self.config.group_size,
                                         self.config.damp)
        stats["calibration_tokens"] = tokens
        return (tq.pack_codes(codes, bits), scale), stats

    @classmethod
    def rebuild(cls, model, adapter, record: dict) -> None:
        """Quantized modules at the recorded shapes (placeholder codes) in place of the float ones."""
        from andactl.models.quantized_tables import install_tables

        install_tables(model, record)


def _table_bytes(emb, head, tied: bool) -> int:
    n = emb.weight.numel() * emb.weight.element_size()
    return n if tied else n + head.weight.numel() * head.weight.element_size()
