"""The parameter count of a SliceGPT-sliced model, planned from the unsliced module tree: what the
dry run reports for a planned slice and what ``rotate`` compares with the source before its work
(SliceGPT adds shortcut matrices and, unless the source tied them, keeps the head apart from the
embedding: a small ratio can grow a model)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from andactl.models.stats import count_parameters
from andactl.models.tied_head import centred_source, head_is_tied


@dataclass(frozen=True)
class SliceTerms:
    """The parameter count of a SliceGPT-sliced model as a function of its widths, read off the
    source's module tree. Per decoder layer: rows of the attention inputs (q/k/v...), columns of the
    attention output, rows of the MLP inputs, columns of the MLP output, whether those two outputs
    have a bias (0/1 each), and what slicing leaves as it is (input biases, q/k norms; the block
    norms are dropped: fuse_norms makes them weightless). Outside the layers: the embeddings' and
    the head's rows, the head's bias, the rest (the final norm dropped likewise). ``one_table``: the
    head and the token embedding stay one table (a tied source, andactl/models/tied_head.py): the
    ``head_rows x hidden`` table plus a ``head_in x hidden`` map replace head and token embedding;
    on a ``centred`` (LayerNorm) source only when the embedding is cut below the hidden size."""

    layers: tuple[tuple[int, int, int, int, int, int, int], ...]
    parallel: bool
    embedding_rows: int
    head_rows: int
    head_bias: int
    rest: int
    hidden: int = 0
    one_table: bool = False
    centred: bool = False


def sliced_parameters(terms: SliceTerms, plan: dict) -> int:
    """Parameters after fuse_norms -> rotate -> slice with ``plan`` (passes.rotate.slicing_plan): the
    untied head, every linear cut on its residual side, the shortcut matrices; equal to
    count_parameters of the sliced model (tested for every supported family)."""
    one_table = terms.one_table and (not terms.centred or plan["embedding"] < terms.hidden)
    if one_table:  # the token table at full width, the map into it (and its bias), other embeddings cut
        D = terms.hidden
        total = ((terms.embedding_rows - terms.head_rows) * plan["embedding"] + terms.head_rows * D
                 + plan["head_in"] * D + (D if terms.head_bias else 0) + terms.rest)
    else:
        total = (terms.embedding_rows * plan["embedding"] + terms.head_rows * plan["head_in"] + terms.head_bias
                 + terms.rest)
    for (a_in, a_out, m_in, m_out, a_bias, m_bias, rest), dims in zip(terms.layers, plan["layers"]):
        d_in, d_mid, d_out = dims["attn_in"], dims["mlp_in"], dims["out"]
        if terms.parallel:  # both branches read the block input and write its output; one shortcut
            total += d_in * (a_in + m_in) + d_out * (a_out + m_out + a_bias + m_bias) + d_in * d_out
        else:
            total += (d_in * a_in + d_mid * (a_out + a_bias) + d_mid * m_in + d_out * (m_out + m_bias)
                      + d_in * d_mid + d_mid * d_out)
        total += rest
    return total


def slice_terms(adapter, tied_source: bool | None = None) -> SliceTerms | None:
    """SliceTerms of a module tree not yet rotated, fused or not (fused: its norms are weightless and
    their biases already folded, the same count); None when it cannot be sliced: rotated (its widths
    are recorded) or with packed linears. ``tied_source``: whether the source tied its head to the
    embedding (a fused tree no longer shows it: NormRecord.tied_source); None reads the tree."""
    layers, in_layers = [], 0
    for layer in adapter.layers():
        if getattr(layer, "shortcuts", None):
            return None
        outs = [adapter.attn_output(layer), adapter.mlp_output(layer)]
        if not all(isinstance(m, nn.Linear) for m in adapter.attn_inputs(layer) + adapter.mlp_inputs(layer) + outs):
            return None
        if adapter.parallel_blocks:  # one norm feeds both branches
            fed = [(adapter.attn_norm(layer), adapter.attn_inputs(layer) + adapter.mlp_inputs(layer))]
        else:
            fed = [(adapter.attn_norm(layer), adapter.attn_inputs(layer)),
                   (adapter.mlp_norm(layer), adapter.mlp_inputs(layer))]
        # fuse_norms folds a norm's bias into the linears it feeds, giving a bias to those without one
        gained = sum(m.out_features for norm, lins in fed if _has_bias(norm) for m in lins if m.bias is None)
        cut = (sum(m.weight.numel() for m in adapter.attn_inputs(layer) + adapter.mlp_inputs(layer) + outs)
               + sum(m.bias.numel() for m in outs if m.bias is not None)
               + sum(count_parameters(norm) for norm, _ in fed if norm is not None))
        n = count_parameters(layer)
        in_layers += n
        layers.append((sum(m.out_features for m in adapter.attn_inputs(layer)), outs[0].in_features,
                       sum(m.out_features for m in adapter.mlp_inputs(layer)), outs[1].in_features,
                       int(outs[0].bias is not None), int(outs[1].bias is not None), n - cut + gained))
    embs, head = adapter.embeddings(), adapter.head()
    tied = any(head_is_tied(head, e) for e in embs)
    final = adapter.final_norm()
    outside = count_parameters(adapter.model) - in_layers
    rest = (outside - sum(e.weight.numel() for e in embs) - (0 if tied else head.weight.numel())
            - (0 if head.bias is None else head.bias.numel()) - (0 if final is None else count_parameters(final)))
    head_bias = head.out_features if head.bias is not None or _has_bias(final) else 0
    one_table = bool(tied if tied_source is None else tied_source)
    return SliceTerms(tuple(layers), bool(adapter.parallel_blocks), sum(e.num_embeddings for e in embs),
                      head.out_features, head_bias, rest, int(adapter.hidden_size), bool(one_table),
                      centred_source(adapter))


def recorded_tied_source(records) -> bool | None:
    """Whether the source tied head and embedding, as fuse_norms recorded it (NormRecord.tied_source);
    None when nothing was fused yet (slice_terms then reads the tree)."""
    norms = getattr(records, "norms", None)
    return None if norms is None else norms.tied_source


def _has_bias(norm) -> bool:
    """Whether ``norm`` has a bias (fuse_norms then gives its readers one: a trained bias is never all zero)."""
    return norm is not None and getattr(norm, "bias", None) is not None
