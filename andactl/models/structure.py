"""Structural edits shared by the passes that make them and the artifact reader that replays them:
untie the head, weightless RMSN norms, SliceGPT layers cut to recorded dims.

Every function here works on real tensors and on ``meta`` tensors alike (the reader builds the
module tree on the meta device and assigns the stored tensors afterwards).
"""
from __future__ import annotations

import torch
from torch import nn

from andactl.errors import ConfigError
from andactl.models.modules import RMSN
from andactl.models.slicegpt_layer import install_layers
from andactl.models.tied_head import PrefixEmbedding, head_is_tied, install_tied_head, is_tied_head


def untie_head(model: nn.Module, adapter) -> None:
    """Gives the head its own weight tensor and marks the config untied (invariant: same values)."""
    head = adapter.head()
    emb = adapter.embeddings()[0]
    if head_is_tied(head, emb):
        head.weight = nn.Parameter(head.weight.detach().clone())
    model.config.tie_word_embeddings = False


def replace_layer_norms(adapter, layer, hidden_size: int, eps: float) -> None:
    """The norms of one decoder layer become ``RMSN(hidden_size, eps)``."""
    adapter.set_attn_norm(layer, RMSN(hidden_size, eps))
    if not adapter.parallel_blocks:
        adapter.set_mlp_norm(layer, RMSN(hidden_size, eps))


def replace_norms(adapter, hidden_size: int, eps: float) -> None:
    """Every per-layer and final norm becomes ``RMSN(hidden_size, eps)``."""
    for layer in adapter.layers():
        replace_layer_norms(adapter, layer, hidden_size, eps)
    if adapter.final_norm() is not None:
        adapter.set_final_norm(RMSN(hidden_size, eps))


def _cut(t: torch.Tensor, rows: int | None = None, cols: int | None = None) -> torch.Tensor:
    """Leading ``rows``/``cols`` of ``t`` as a fresh contiguous tensor (frees the big storage)."""
    if rows is not None:
        t = t[:rows]
    if cols is not None:
        t = t[..., :cols]
    return t.detach().clone().contiguous()


def _cut_linear(lin: nn.Linear, in_dim: int | None = None, out_dim: int | None = None) -> None:
    lin.weight = nn.Parameter(_cut(lin.weight, out_dim, in_dim), requires_grad=lin.weight.requires_grad)
    if out_dim is not None and lin.bias is not None:
        lin.bias = nn.Parameter(_cut(lin.bias, out_dim), requires_grad=lin.bias.requires_grad)
    lin.out_features, lin.in_features = lin.weight.shape


def _cut_embedding(emb: nn.Embedding, dim: int) -> None:
    emb.weight = nn.Parameter(_cut(emb.weight, cols=dim), requires_grad=emb.weight.requires_grad)
    emb.embedding_dim = dim


def _cut_shortcut(layer, name: str, shape: tuple[int, int], dtype: torch.dtype, device) -> None:
    old = getattr(layer, name)
    if old is None:  # rebuilding on a fresh model: a placeholder of the right shape
        setattr(layer, name, torch.zeros(shape, dtype=dtype, device=device))
    else:
        setattr(layer, name, _cut(old, shape[0], shape[1]))


def dims_record(plan: dict, parallel: bool = False) -> dict:
    """The structure record of a sliced model: every per-layer dim and its shortcut shapes (one
    ``shortcut`` per block for parallel-block models, attention and MLP shortcuts otherwise)."""
    layers = []
    prev = plan["embedding"]
    for dims in plan["layers"]:
        if dims["attn_in"] != prev:
            raise ConfigError(f"inconsistent slicing plan: layer input {dims['attn_in']} after output {prev}")
        if parallel:
            layers.append({**dims, "shortcut": [dims["attn_in"], dims["out"]]})
        else:
            layers.append({**dims, "attn_shortcut": [dims["attn_in"], dims["mlp_in"]],
                           "mlp_shortcut": [dims["mlp_in"], dims["out"]]})
        prev = dims["out"]
    return {"pass": "slice", "embedding_dim": plan["embedding"], "layers": layers, "head_in": plan["head_in"]}


def cut_layer(adapter, layer, dims: dict, dtype: torch.dtype, device) -> None:
    """Cuts one (installed SliceGPT) layer's linears and shortcuts to ``dims`` (attn_in, mlp_in, out)."""
    d_in, d_mid, d_out = int(dims["attn_in"]), int(dims["mlp_in"]), int(dims["out"])
    if adapter.parallel_blocks:  # both branches read the block input and write the block output
        for lin in adapter.attn_inputs(layer) + adapter.mlp_inputs(layer):
            _cut_linear(lin, in_dim=d_in)
        _cut_linear(adapter.attn_output(layer), out_dim=d_out)
        _cut_linear(adapter.mlp_output(layer), out_dim=d_out)
        _cut_shortcut(layer, "shortcut", (d_in, d_out), dtype, device)
        return
    for lin in adapter.attn_inputs(layer):
        _cut_linear(lin, in_dim=d_in)
    _cut_linear(adapter.attn_output(layer), out_dim=d_mid)
    for lin in adapter.mlp_inputs(layer):
        _cut_linear(lin, in_dim=d_mid)
    _cut_linear(adapter.mlp_output(layer), out_dim=d_out)
    _cut_shortcut(layer, "attn_shortcut", (d_in, d_mid), dtype, device)
    _cut_shortcut(layer, "mlp_shortcut", (d_mid, d_out), dtype, device)


@torch.no_grad()
def apply_dims(adapter, record: dict, store=None) -> None:
    """Cuts embeddings, every layer's linears and shortcuts, and the head to ``record``'s dims
    (layers through ``store``'s ``onload`` when given: andactl/models/layer_store.py). With
    ``record["tied_head"]`` the head is a TiedHead over the token embedding's table and the
    embedding that table's prefix (andactl/models/tied_head.py): the ``slice`` pass ties the
    weights (``tie_head``) before calling this; a rebuild gets placeholders of those shapes.

    Invariant: on a rotated model whose trailing coordinates carry the least variance, the cut
    model computes what the rotated model computes with those coordinates zeroed."""
    emb_dim, head_in = int(record["embedding_dim"]), int(record["head_in"])
    ref = adapter.embeddings()[0].weight  # dtype and device of new tensors (before any tie)
    if record.get("tied_head") and not is_tied_head(adapter.head()):  # rebuilding: placeholders
        install_tied_head(adapter.model, head_in, emb_dim)
    for emb in adapter.embeddings():
        if not isinstance(emb, PrefixEmbedding):
            _cut_embedding(emb, emb_dim)
    layers = install_layers(adapter)
    if len(layers) != len(record["layers"]):
        raise ConfigError(f"slicing record has {len(record['layers'])} layers, the model {len(layers)}")
    for i, dims in enumerate(record["layers"]):
        if store is None:
            cut_layer(adapter, layers[i], dims, ref.dtype, ref.device)
            continue
        with store.onload(i) as layer:
            cut_layer(adapter, layer, dims, ref.dtype, ref.device)
    if not is_tied_head(adapter.head()):
        _cut_linear(adapter.head(), in_dim=head_in)
