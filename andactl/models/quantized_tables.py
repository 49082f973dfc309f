"""Modules for quantized tables: the LM head and the token embedding stored as group-wise INT8/INT4
codes with fp16 scales (layout and math in ``formats/table_quant.py``).

``QuantizedEmbedding``: a lookup table; forward gathers the requested rows of the codes and scales
and dequantizes only those rows (never the whole table). ``dense_lookup`` is its reference: the
whole table dequantized, then ``F.embedding``; the two are equal bit for bit.

``QuantizedHead``: y = x @ dequant(W)^T (+ bias), the weight dequantized in float32 per call and
cast to x.dtype (the head stays in the model dtype, as DESIGN.md asks; no activation quantization).

Both expose ``weight_packed`` / ``weight_scale`` (module-local names, like packed linears) and
``in_features`` / ``out_features`` so parameter counting treats them as logical weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from andactl.formats import table_quant as tq
from andactl.kernels import tables


def _codes_shape(rows: int, cols: int, bits: int) -> tuple[int, int]:
    return rows, (cols if bits == 8 else -(-cols // 2))


class QuantizedEmbedding(nn.Module):
    """Token embedding [num_embeddings, embedding_dim] as INT8/INT4 codes; output in ``dtype``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, bits: int, group_size: int = tq.DEFAULT_TABLE_GROUP,
                 padding_idx: int | None = None, dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.bits, self.group_size, self.padding_idx, self.dtype = int(bits), int(group_size), padding_idx, dtype
        self.in_features, self.out_features = self.embedding_dim, self.num_embeddings
        self.register_buffer("weight_packed", torch.zeros(_codes_shape(num_embeddings, embedding_dim, bits),
                                                          dtype=torch.uint8, device=device))
        self.register_buffer("weight_scale", torch.zeros(num_embeddings, -(-embedding_dim // group_size),
                                                         dtype=torch.float16, device=device))

    @classmethod
    def from_float(cls, emb: nn.Embedding, bits: int, group_size: int = tq.DEFAULT_TABLE_GROUP, clip: bool = False) -> "QuantizedEmbedding":
        return cls.from_table(emb, bits, group_size, *tq.quantize(emb.weight.detach(), bits, group_size, clip))

    @classmethod
    def from_table(cls, emb: nn.Embedding, bits: int, group_size: int, packed: torch.Tensor,
                   scale: torch.Tensor) -> "QuantizedEmbedding":
        """In place of ``emb``, the table (``packed``, ``scale``) in the table_quant layout."""
        w = emb.weight
        new = cls(w.shape[0], w.shape[1], bits, group_size, getattr(emb, "padding_idx", None), w.dtype, w.device)
        new.weight_packed, new.weight_scale = packed, scale
        return new

    def _apply(self, fn, recurse=True):
        """``.to(dtype)`` / ``.half()`` on the model also change the output dtype (the codes stay uint8)."""
        probe = fn(torch.zeros((), dtype=self.dtype))
        if probe.is_floating_point():
            self.dtype = probe.dtype
        return super()._apply(fn, recurse)

    def dequantized(self) -> torch.Tensor:
        return tq.dequantize(self.weight_packed, self.weight_scale, self.bits, self.embedding_dim, self.group_size, self.dtype)

    def dense_lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Reference: the whole table dequantized, then a dense lookup."""
        return F.embedding(ids, self.dequantized())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return tq.dequantize_rows(self.weight_packed, self.weight_scale, ids, self.bits, self.embedding_dim,
                                  self.group_size, self.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int{self.bits}, group={self.group_size}"


class QuantizedHead(nn.Module):
    """Linear [out_features, in_features] with INT8/INT4 group-wise weights (groups along in)."""

    def __init__(self, in_features: int, out_features: int, bits: int, group_size: int = tq.DEFAULT_TABLE_GROUP,
                 bias: bool = False, dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.bits, self.group_size = int(bits), int(group_size)
        self.register_buffer("weight_packed", torch.zeros(_codes_shape(out_features, in_features, bits),
                                                          dtype=torch.uint8, device=device))
        self.register_buffer("weight_scale", torch.zeros(out_features, -(-in_features // group_size),
                                                         dtype=torch.float16, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device)) if bias else None

    @classmethod
    def from_float(cls, lin: nn.Linear, bits: int, group_size: int = tq.DEFAULT_TABLE_GROUP, clip: bool = False) -> "QuantizedHead":
        return cls.from_table(lin, bits, group_size, *tq.quantize(lin.weight.detach(), bits, group_size, clip))

    @classmethod
    def from_table(cls, lin: nn.Linear, bits: int, group_size: int, packed: torch.Tensor,
                   scale: torch.Tensor) -> "QuantizedHead":
        """In place of ``lin``, the table (``packed``, ``scale``) in the table_quant layout (and its bias)."""
        w = lin.weight
        new = cls(w.shape[1], w.shape[0], bits, group_size, lin.bias is not None, w.dtype, w.device)
        new.weight_packed, new.weight_scale = packed, scale
        if lin.bias is not None:
            new.bias = nn.Parameter(lin.bias.detach().clone())
        return new

    @classmethod
    def sharing(cls, emb: QuantizedEmbedding) -> "QuantizedHead":
        """A head that reads the embedding's codes and scales (tied weights, stored once)."""
        new = cls(emb.embedding_dim, emb.num_embeddings, emb.bits, emb.group_size, False, emb.dtype, emb.weight_packed.device)
        new.weight_packed, new.weight_scale = emb.weight_packed, emb.weight_scale
        return new

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return tq.dequantize(self.weight_packed, self.weight_scale, self.bits, self.in_features, self.group_size, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """From the codes (``andactl::table_linear``: no float table is built on CPU with the C++
        extension), unless gradients must flow to x: then through the dequantized table."""
        if torch.is_grad_enabled() and x.requires_grad:
            bias = None if self.bias is None else self.bias.to(x.dtype)
            return F.linear(x, self.dequantized(torch.float32).to(x.dtype), bias)
        return tables.table_linear(x, self.weight_packed, self.weight_scale, self.bits, self.group_size, self.bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, int{self.bits}, group={self.group_size}"


def _float_dtype(module: nn.Module | None, default: torch.dtype) -> torch.dtype:
    weight = getattr(module, "weight", None)
    return weight.dtype if isinstance(weight, torch.Tensor) and weight.is_floating_point() else default


def install_tables(model: nn.Module, record: dict) -> None:
    """Replaces the token embedding / LM head of ``model`` by quantized modules at the shapes a
    ``quantize_tables`` record names (placeholder codes, filled by loading the state dict); a
    ``shared`` record makes the head read the embedding's codes. What the artifact reader needs.
    The tables output the dtype of the modules they replace (the model was built in its run
    dtype), else the dtype the record names: a bfloat16 run stays bfloat16 from the embedding on."""
    from andactl.models.tied_head import is_tied_head

    group = int(record["group_size"])
    e, h, fe = record.get("embeddings"), record.get("head"), record.get("float_embedding")
    old_head = model.get_output_embeddings()
    one_table = is_tied_head(old_head)  # the slicing record made it: quantize its table, keep the map
    new_emb = None
    if e:
        dtype = _float_dtype(model.get_input_embeddings(), getattr(torch, e.get("dtype", "float32")))
        new_emb = QuantizedEmbedding(e["rows"], e["cols"], e["bits"], group, e.get("padding_idx"), dtype)
        model.set_input_embeddings(new_emb)
    elif fe:  # split off a TiedHead's table as a float embedding
        dtype = _float_dtype(old_head.pre if one_table else None, getattr(torch, fe.get("dtype", "float32")))
        model.set_input_embeddings(nn.Embedding(fe["rows"], fe["cols"], dtype=dtype,
                                                device=old_head.pre.weight.device if one_table else None))
    if h:
        if record.get("shared"):
            new_head = QuantizedHead.sharing(new_emb)
        else:
            old = old_head.table if one_table else old_head
            dtype = _float_dtype(old, getattr(torch, h.get("dtype", "float32")))
            new_head = QuantizedHead(h["in"], h["out"], h["bits"], group, h["bias"], dtype)
        if one_table:
            old_head.table = new_head
        else:
            model.set_output_embeddings(new_head)
    model.config.tie_word_embeddings = False
