"""One table for the head and the token embedding of a sliced model whose source tied them.

SliceGPT unties the head: ``fuse_norms`` folds the final norm's scale (and shift) into it, and the
embedding is rotated onto ``Q_0`` and cut to width ``d`` while the head is rotated onto the last
residual's basis. On a tied source both are still one table ``E' = E Q_0`` behind a small map:
head ``= E diag(g) Q_L = E' (Q_0^T diag(g) Q_L)``, and the embedding is ``E'[:, :d]``. So a sliced
tied model stores ``E'`` once (``TiedHead.table``), the ``hidden x head_in`` map (``TiedHead.pre``),
and reads its embedding as the table's first ``d`` columns (``PrefixEmbedding``): ``V x d`` fewer
parameters than SliceGPT's untied head (21.2M of SmolLM2-135M's 140.7M at 25%).

On a LayerNorm source (OPT) ``fuse_norms`` centres the embedding rows, ``E_c = E - m 1^T`` with
``m`` the rows' means, while the head keeps reading ``E``: head ``= E_c Q_0 (Q_0^T diag(g) Q_L) + m
(g^T Q_L)``, the centred table behind a map plus a rank-one term. The centred table has a direction
it does not use, the rotated ``1`` (every centred row is orthogonal to it), and PCA puts it in the
last, cut columns (zero variance): ``fold_mean_column`` writes the missing column (found from the
first fit's residual) into that direction, changing only columns the embedding never reads, so the
table keeps its width and the embedding its values bit for bit.

``fit_tied_head`` finds the map from the weights themselves (least squares, float64) and checks the
fit is exact to the dtype's rounding; the artifact records the result (``SlicingRecord.tied_head``)
and the reader rebuilds the same modules on the meta device (``install_tied_head``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ROW_CHUNK = 8192  # table rows per float64 block of the fit (bounds its extra memory)
_RANK_CUTOFF = 1e-10  # Gram eigenvalues below this fraction of the largest (or below the table dtype's
# eps squared, where that is larger: bfloat16, float16) are directions the table does not span


class TiedHead(nn.Module):
    """logits ``= table(pre(x))``: ``pre`` (Linear head_in -> hidden) maps the last residual into the
    token embedding's basis, ``table`` (Linear hidden -> vocab, or a quantized head table) is the
    rotated token embedding, whose first columns are also the model's embedding."""

    def __init__(self, pre: nn.Linear, table: nn.Module):
        super().__init__()
        self.pre, self.table = pre, table

    @property
    def in_features(self) -> int:
        return self.pre.in_features

    @property
    def out_features(self) -> int:
        return self.table.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table(self.pre(x))


class PrefixEmbedding(nn.Module):
    """Token embedding = the first ``embedding_dim`` columns of ``head.table``'s rows (float or a
    quantized table), in the dtype of ``head.pre``. Holds no tensor: the table is stored once, under
    the head (``head`` is a plain attribute, not a submodule, so the state dict names it once)."""

    def __init__(self, head: TiedHead, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        object.__setattr__(self, "head", head)
        self.embedding_dim, self.padding_idx = int(embedding_dim), padding_idx
        self.num_embeddings = head.out_features
        self.in_features, self.out_features = self.embedding_dim, self.num_embeddings

    @property
    def weight(self) -> torch.Tensor:
        """The embedding matrix as a view of a float table's columns (a quantized table has none)."""
        table = self.head.table
        if not isinstance(table, nn.Linear):
            raise AttributeError("a PrefixEmbedding over a quantized table has no float weight")
        return table.weight[:, : self.embedding_dim]

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Whole table rows of ``ids`` (every column), in the head's run dtype."""
        table, dtype = self.head.table, self.head.pre.weight.dtype
        if isinstance(table, nn.Linear):
            return F.embedding(ids, table.weight).to(dtype)
        from andactl.formats import table_quant as tq

        return tq.dequantize_rows(table.weight_packed, table.weight_scale, ids, table.bits, table.in_features,
                                  table.group_size, dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.rows(ids)[..., : self.embedding_dim]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, prefix of the head's table"


def head_is_tied(head: nn.Module, emb: nn.Module) -> bool:
    """Whether ``head`` reads ``emb``'s weight tensor (HF's tied word embeddings; on the meta device,
    where every data pointer is 0, only the same tensor object counts)."""
    w_h, w_e = getattr(head, "weight", None), getattr(emb, "weight", None)
    if w_h is None or w_e is None:
        return False
    return w_h is w_e or (not w_h.is_meta and w_h.data_ptr() == w_e.data_ptr())


def centred_source(adapter) -> bool:
    """Whether fuse_norms centred the token embedding's rows (a LayerNorm source), so that one table
    needs ``fold_mean_column`` and an embedding cut below the hidden size."""
    return adapter.norm_kind == "layernorm"


def is_tied_head(head: nn.Module) -> bool:
    return isinstance(head, TiedHead)


def _blocks(table: torch.Tensor, head_w: torch.Tensor, head_b: torch.Tensor | None):
    """``(e, t)`` float64 row blocks of the table and of the fit's target (head rows, bias last)."""
    for r0 in range(0, table.shape[0], _ROW_CHUNK):
        e = table[r0:r0 + _ROW_CHUNK].to(torch.float64)
        t = head_w[r0:r0 + _ROW_CHUNK].to(torch.float64)
        if head_b is not None:
            t = torch.cat([t, head_b[r0:r0 + _ROW_CHUNK].to(torch.float64)[:, None]], dim=1)
        yield e, t


@torch.no_grad()
def fit_tied_head(table: torch.Tensor, head_w: torch.Tensor, head_b: torch.Tensor | None):
    """``(P, p, residual)`` with ``table @ P = head_w`` and ``table @ p = head_b`` in the least-squares
    sense (float64 normal equations, ``table`` [V, D], ``head_w`` [V, d]; ``p`` None without a bias)
    and the fit's relative Frobenius residual. Exact (to rounding) when the head is the table behind
    a linear map, as on a SliceGPT-rotated tied source."""
    X, _ = _solve(table, head_w, head_b)
    if X is None:  # an all-zero table: no map
        return None, None, float("inf")
    err = norm = 0.0
    for e, t in _blocks(table, head_w, head_b):
        err += float(((e @ X) - t).square().sum())
        norm += float(t.square().sum())
    residual = (err / norm) ** 0.5 if norm > 0 else 0.0
    P = X[:, : head_w.shape[1]]
    p = None if head_b is None else X[:, -1]
    return P, p, residual


def _solve(table: torch.Tensor, head_w: torch.Tensor, head_b: torch.Tensor | None):
    """``(X, n)``: the minimum-norm least-squares map X (float64, [D, d (+1)]) of ``fit_tied_head``
    (None for an all-zero table) and the table's least-used direction ``n`` (the normal matrix's
    smallest eigenvector). Directions the table does not span at its dtype's precision (a LayerNorm
    source's centred table has one: the rows' mean) get no weight in X, so the map stays as well
    conditioned as the table's span."""
    D = table.shape[1]
    rhs_cols = head_w.shape[1] + (0 if head_b is None else 1)
    G = torch.zeros(D, D, dtype=torch.float64, device=table.device)
    R = torch.zeros(D, rhs_cols, dtype=torch.float64, device=table.device)
    for e, t in _blocks(table, head_w, head_b):
        G += e.T @ e
        R += e.T @ t
    lam, U = torch.linalg.eigh(G)
    keep = lam > lam[-1] * max(_RANK_CUTOFF, torch.finfo(table.dtype).eps ** 2)
    if lam[-1] <= 0 or not bool(keep.any()):
        return None, U[:, 0]
    kept = U[:, keep]
    return kept @ ((kept.T @ R) / lam[keep][:, None]), U[:, 0]


@torch.no_grad()
def residual_column(table: torch.Tensor, head_w: torch.Tensor, head_b: torch.Tensor | None):
    """``(column, n)``: the column [V] (float64, scaled to the table's RMS) that best extends
    ``table`` for the fit — the leading left singular direction of the first fit's residual — and
    the table's least-used direction ``n`` (where ``fold_mean_column`` puts it); None for an
    all-zero table. On a LayerNorm source that residual is rank one (the rows' means times
    ``g^T Q_L``), so table + column fit exactly."""
    X, n = _solve(table, head_w, head_b)
    if X is None:
        return None
    gram = torch.zeros(X.shape[1], X.shape[1], dtype=torch.float64, device=table.device)
    for e, t in _blocks(table, head_w, head_b):
        r = t - e @ X
        gram += r.T @ r
    v = torch.linalg.eigh(gram).eigenvectors[:, -1]  # the residual's leading right singular vector
    col = torch.cat([t @ v - e @ (X @ v) for e, t in _blocks(table, head_w, head_b)])
    scale = (table.to(torch.float64).square().mean() / col.square().mean().clamp_min(1e-300)).sqrt()
    return col * scale, n


_CUT_SHARE = 1e-6  # largest share of the unused direction's weight in the kept columns (or the dtype's eps²)


@torch.no_grad()
def fold_mean_column(table: torch.Tensor, col: torch.Tensor, n: torch.Tensor,
                     embedding_dim: int) -> torch.Tensor | None:
    """``table`` with ``col`` (float64 [V]) added along its least-used direction ``n`` (from
    ``residual_column``: a centred table's rotated ``1``), restricted to the columns from
    ``embedding_dim`` on: ``table + col n'^T``, ``n'`` = ``n`` zeroed on the first
    ``embedding_dim`` columns and renormalised. Those first columns are returned unchanged, bit for
    bit (the embedding reads them); None when ``n`` is not (to ``_CUT_SHARE`` or the dtype's eps²)
    in the cut columns."""
    share = max(_CUT_SHARE, torch.finfo(table.dtype).eps ** 2)  # bfloat16 rotations leave ~1e-5 there
    if embedding_dim >= table.shape[1] or float(n[:embedding_dim].square().sum()) > share:
        return None
    n_cut = n[embedding_dim:] / n[embedding_dim:].norm()
    out = table.clone()
    for r0 in range(0, table.shape[0], _ROW_CHUNK):
        cut = out[r0:r0 + _ROW_CHUNK, embedding_dim:]
        cut.copy_(cut.to(torch.float64) + col[r0:r0 + _ROW_CHUNK, None] * n_cut[None, :])
    return out


def fit_tolerance(dtype: torch.dtype) -> float:
    """Largest relative residual accepted as "the head is the table behind a map" (rounding only)."""
    return max(1e-5, 8 * torch.finfo(dtype).eps)


@torch.no_grad()
def tie_head(model: nn.Module, head_in: int, embedding_dim: int, centred: bool = False) -> float | None:
    """Replaces ``model``'s (rotated, not yet cut) head by a TiedHead over its token embedding's
    table (on a ``centred`` source with the rows' mean column folded into the cut columns:
    ``fold_mean_column``) and the embedding by its ``embedding_dim``-column prefix, when the fit is
    exact; returns the fit's residual, or None (model unchanged) when the head is not the table
    behind a map. Invariant: logits equal the cut untied model's to the dtype's rounding."""
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    E, head_w = emb.weight.detach(), head.weight[:, :head_in]
    if centred:
        found = residual_column(E, head_w, head.bias)
        E = None if found is None else fold_mean_column(E, *found, embedding_dim)
        if E is None:
            return None
    P, p, residual = fit_tied_head(E, head_w, head.bias)
    if P is None or residual > fit_tolerance(E.dtype):
        return None
    pre = _install(model, E, head_in, embedding_dim).pre
    pre.weight.data.copy_(P.to(E.dtype))
    if p is not None:
        pre.bias.data.copy_(p.to(E.dtype))
    return residual


def install_tied_head(model: nn.Module, head_in: int, embedding_dim: int) -> None:
    """The TiedHead / PrefixEmbedding structure at the recorded widths, with placeholder tensors on
    the device and dtype of the current embedding (``meta`` when the reader builds the tree)."""
    _install(model, torch.empty_like(model.get_input_embeddings().weight), head_in, embedding_dim)


def _install(model: nn.Module, table_weight: torch.Tensor, head_in: int, embedding_dim: int) -> TiedHead:
    """Puts a TiedHead over ``table_weight`` [V, D] (its map uninitialised, with a bias when the
    current head has one) and its PrefixEmbedding in place of the model's head and embedding."""
    emb, old = model.get_input_embeddings(), model.get_output_embeddings()
    V, D = table_weight.shape
    kw = dict(dtype=table_weight.dtype, device=table_weight.device)
    pre = nn.Linear(head_in, D, bias=old.bias is not None, **kw)
    table = nn.Linear(D, V, bias=False, **kw)
    table.weight = nn.Parameter(table_weight, requires_grad=False)
    head = TiedHead(pre, table)
    model.set_output_embeddings(head)
    model.set_input_embeddings(PrefixEmbedding(head, embedding_dim, getattr(emb, "padding_idx", None)))
    model.config.tie_word_embeddings = False
    return head
