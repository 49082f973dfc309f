"""GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", 2022) for one linear layer, producing the group-wise INT4 of ``formats.int4``.

Column by column (in blocks of ``block_size`` with lazy batch updates), each weight column is
rounded and the rounding error is spread over the not-yet-quantized columns through the upper
Cholesky factor of the inverse Hessian ``H^-1``, ``H = 2/n Σ x xᵀ`` over calibration inputs.
Group scales are computed when the column loop enters a group, on the error-updated weights.
With ``act_order`` columns are visited in order of decreasing ``H_ii``; because the packed layout
has no ``g_idx``, groups keep the ORIGINAL column order and their scales are computed up front on
the original weights ("static groups"), then the columns are quantized in permuted order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from andactl.errors import ConfigError, DataError, NumericsError
from andactl.formats import table_quant as tq
from andactl.formats.int4 import Int4Weight, assemble, group_params, quantize_codes, resolve_group_size

MAX_DAMP_RETRIES = 6
ACCUMULATE_BLOCK_ELEMENTS = 1 << 23  # elements of one band of xᵀx (32 MiB in float32)


class HessianAccumulator:
    """Running ``H = 2/n Σ x xᵀ`` over the rows of inputs ``x[..., K]``: each ``add`` computes its
    ``xᵀx`` in float32 (float64 for float64 inputs), in bands of rows of ``ACCUMULATE_BLOCK_ELEMENTS``
    elements, and adds it to a float64 sum (the only [K, K] tensor it holds: a whole float32 ``xᵀx``
    and its float64 cast were 1.5x the sum again for an 8192-wide ``down_proj``).

    Invariant: ``n`` counts exactly the rows added with a non-zero mask; masked rows contribute
    nothing. ``H`` is all zeros while ``n == 0``."""

    def __init__(self, in_features: int, device: torch.device | str = "cpu"):
        self.in_features = int(in_features)
        self._sum = torch.zeros(in_features, in_features, dtype=torch.float64, device=device)
        self.n = 0

    def add(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Adds the rows of ``x[..., K]``; ``mask[...]`` (same leading shape) 0 marks padding rows."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"HessianAccumulator: expected last dim {self.in_features}, got {x.shape[-1]}")
        rows = x.reshape(-1, self.in_features)
        if mask is not None:
            rows = rows[mask.reshape(-1).to(rows.device) != 0]
        if rows.shape[0] == 0:
            return
        dtype = torch.float64 if rows.dtype == torch.float64 else torch.float32
        rows = rows.to(device=self._sum.device, dtype=dtype)
        step = max(1, ACCUMULATE_BLOCK_ELEMENTS // self.in_features)
        for i in range(0, self.in_features, step):  # a band of xᵀx at a time: no [K, K] temporaries
            self._sum[i:i + step] += rows[:, i:i + step].T @ rows
        self.n += rows.shape[0]

    def all_reduce(self) -> None:
        """Under torchrun: the sum and ``n`` become those over every rank's calibration share."""
        from andactl.distributed import active, all_reduce_sum

        if active():
            all_reduce_sum(self._sum)
            self.n = int(all_reduce_sum(torch.tensor([self.n], dtype=torch.float64, device=self._sum.device)).item())

    @property
    def H(self) -> torch.Tensor:
        """``2/n Σ x xᵀ`` as float64 [K, K] (a new tensor; the accumulator keeps its sum)."""
        if self.n == 0:
            return torch.zeros_like(self._sum)
        return self._sum * (2.0 / self.n)

    def take_H(self) -> torch.Tensor:
        """``H`` (equal to the property, bit for bit) without a copy: the sum is scaled in place and
        handed over, and the accumulator is left empty (``n`` 0, no sum). For ``K`` of a few thousand
        the [K, K] float64 matrix is the largest thing GPTQ holds, so it is never duplicated."""
        total, n = self._sum, self.n
        self._sum, self.n = torch.zeros(0, 0, dtype=torch.float64, device=total.device), 0
        if n:
            total.mul_(2.0 / n)
        return total


def _row_bands(t: torch.Tensor):
    """``t`` (2-D) in bands of rows of about ``ACCUMULATE_BLOCK_ELEMENTS`` elements: whole-matrix
    checks on a [K, K] float64 matrix would allocate more than the matrix again."""
    step = max(1, ACCUMULATE_BLOCK_ELEMENTS // max(t.shape[1], 1))
    return (t[i:i + step] for i in range(0, t.shape[0], step))


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every entry of the 2-D ``t`` is finite, checked band by band."""
    return all(bool(torch.isfinite(band).all()) for band in _row_bands(t))


def _inverse_cholesky_upper(H: torch.Tensor, damp: float, name: str) -> tuple[torch.Tensor, float]:
    """Upper Cholesky factor of ``(H + λI)^-1`` with ``λ = damp · mean(diag H)``. Returns the factor
    (float64) and the relative damping that succeeded.

    ``H`` (float64, owned by the caller's GPTQ call) is damped, factored, inverted and factored
    again IN PLACE (LAPACK potrf/potri through torch's ``out=``, bit for bit the out-of-place
    results; on the column-major transpose view, so LAPACK needs no layout copy either), so a single
    [K, K] float64 matrix is alive: K²·8 bytes, 0.54 GB for an 8192-wide
    ``down_proj``, where the textbook sequence holds four (the column loop then reads the factor
    one block of rows at a time in float32, so no float32 [K, K] copy is made either).
    With ``damp > 0`` the damped matrix of a positive semi-definite ``H`` has condition number at
    most ``K / damp`` and cannot fail in float64; only ``damp == 0`` keeps a copy so that a
    singular ``H`` can be retried with ``λ`` growing from 1e-6 ×10 per attempt."""
    diag = H.diagonal()
    original = diag.clone()
    mean_diag = float(original.mean())
    rel = max(damp, 0.0)
    backup = H.clone() if rel == 0 else None
    info = torch.empty((), dtype=torch.int32, device=H.device)
    F = H.mT  # H is symmetric: its transpose view is the same matrix, column-major as LAPACK wants (no copies)
    for attempt in range(MAX_DAMP_RETRIES):
        if attempt:
            H.copy_(backup)
        diag.copy_(original).add_(rel * mean_diag)  # == H + λI, bit for bit
        torch.linalg.cholesky_ex(F, out=(F, info))  # F := L (lower)
        if int(info) == 0:
            del backup
            torch.cholesky_inverse(F, out=F)  # F := (L Lᵀ)^-1
            torch.linalg.cholesky_ex(F, upper=True, out=(F, info))  # F := U with Uᵀ U = (H + λI)^-1
            if int(info) == 0 and _all_finite(H):
                return F, rel
            break
        if backup is None:
            break
        rel = rel * 10 if rel > 0 else 1e-6
    raise NumericsError(
        f"GPTQ for {name}: the calibration Hessian is not positive definite with damping "
        f"{rel:g}·mean(diag H) (inputs degenerate or non-finite)"
    )


@dataclass(frozen=True)
class Grid:
    """A group-wise quantization grid for the column loop: ``params(w[N, g']) -> (scale[N],
    zero[N])`` of one group, ``codes(w[N], scale, zero)`` (float codes) and ``dequant(q, scale,
    zero)``; the quantized value of a column is ``dequant(codes(w, s, z), s, z)``."""

    params: Callable
    codes: Callable
    dequant: Callable


def int4_grid(symmetric: bool) -> Grid:
    """formats.int4: codes 0..15 around a zero point (8 when symmetric)."""
    return Grid(lambda w: group_params(w, symmetric), quantize_codes, lambda q, s, z: (q - z) * s)


def table_grid(bits: int) -> Grid:
    """formats.table_quant: symmetric codes in [-qmax, qmax], fp16 scale rounded up from the
    group's absmax (zero point 0)."""
    qmax = tq.QMAX[bits]

    def params(w: torch.Tensor):
        scale = tq.fp16_scale(w.float().abs().amax(dim=1), qmax).float()
        return scale, torch.zeros_like(scale)

    return Grid(params, lambda w, s, z: tq.codes(w, s, bits), lambda q, s, z: q * s)


def gptq_quantize(
    w: torch.Tensor, H: torch.Tensor, group_size: int = 128, symmetric: bool = True,
    damp: float = 0.01, act_order: bool = False, block_size: int = 128, name: str = "linear",
    consume_H: bool = False,
) -> tuple[Int4Weight, dict]:
    """Quantizes ``w[N, K]`` to INT4 minimising ``||X wᵀ - X ŵᵀ||`` for the inputs behind ``H[K, K]``.

    With ``consume_H`` a float64 ``H`` is worked on in place and released (left as an empty
    tensor) instead of copied: the caller hands it over (``HessianAccumulator.take_H``). The result
    is the same either way.

    Invariant: the result uses the same grid as ``quantize_weight_rtn`` (same group size, scales
    from ``group_params``); dead input columns (``H_ii = 0``) quantize to exactly 0. Stats: the
    GPTQ proxy loss, damping used, dead columns, time."""
    g = resolve_group_size(group_size, w.shape[1])
    Q, scales, zeros, stats = _gptq_columns(w, H, g, int4_grid(symmetric), damp, act_order, block_size, name, consume_H)
    return assemble(Q, scales, zeros, symmetric, g, w.shape[1]), stats


def gptq_table(w: torch.Tensor, H: torch.Tensor, bits: int, group_size: int, damp: float = 0.01,
               name: str = "lm_head") -> tuple[torch.Tensor, torch.Tensor, dict]:
    """GPTQ onto the grid of formats.table_quant (INT8 / INT4, symmetric, fp16 group scales along
    the input dim): ``(codes int16 [N, K], scale float16 [N, ceil(K / group)], stats)``.
    ``pack_codes(codes, bits)`` and ``scale`` are a table that ``dequantize`` reads; its scales
    are computed on the error-updated weights when the loop enters a group (so, unlike RTN, a later
    column of the group may be clipped to ``qmax * scale``)."""
    if group_size < 1:
        raise ConfigError(f"table group size must be >= 1, got {group_size}")
    Q, scales, _, stats = _gptq_columns(w, H, group_size, table_grid(bits), damp, False, 128, name, False)
    return Q.to(torch.int16), scales.to(torch.float16), stats


def _gptq_columns(w: torch.Tensor, H: torch.Tensor, g: int, grid: Grid, damp: float, act_order: bool,
                  block_size: int, name: str, consume_H: bool):
    """The column loop of GPTQ on ``grid`` with groups of ``g`` columns: (codes [N, K] float,
    scales [N, G], zeros [N, G], stats)."""
    t0 = time.perf_counter()
    n, k = w.shape
    if H.shape != (k, k):
        raise ValueError(f"GPTQ for {name}: Hessian shape {tuple(H.shape)} does not match K={k}")
    if not _all_finite(H):
        raise NumericsError(f"GPTQ for {name}: the calibration Hessian contains NaN or Inf")
    if not any(bool(band.any()) for band in _row_bands(H)):
        raise DataError(f"GPTQ for {name}: the calibration Hessian is all zeros (calibration too small / no tokens reached this module)")
    W = w.detach().to(torch.float32).clone()
    if not torch.isfinite(W).all():
        raise NumericsError(f"GPTQ for {name}: the weight contains NaN or Inf")
    owned = consume_H and H.dtype == torch.float64 and H.device == W.device
    if not owned:  # (an owned H is used as is: a detach() view would keep its storage alive)
        H = H.detach().to(device=W.device, dtype=torch.float64).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0

    n_groups = -(-k // g)
    scales = torch.ones(n, n_groups, dtype=torch.float32, device=W.device)
    zeros = torch.full_like(scales, 8.0)
    if act_order:
        for gi in range(n_groups):  # static groups: on the original weights, original order
            scales[:, gi], zeros[:, gi] = grid.params(W[:, gi * g : (gi + 1) * g])
        perm = torch.argsort(torch.diag(H), descending=True, stable=True)
        W = W[:, perm]
        permuted = H.index_select(0, perm).index_select(1, perm)
        H.set_()  # ours (a copy, or handed over): release it before the factorisation
        H = permuted
    else:
        perm = torch.arange(k, device=W.device)
    U, rel_damp = _inverse_cholesky_upper(H, damp, name)  # float64, a view of H's storage

    # The column loop works on Wᵀ [K, N] so that a weight column is a contiguous row.
    Wt = W.T.contiguous()
    del W
    scales_t, zeros_t = scales.T.contiguous(), zeros.T.contiguous()
    Qt = torch.zeros_like(Wt)
    loss = torch.zeros(n, dtype=torch.float32, device=Wt.device)
    col_group = (perm // g).tolist()
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        W1 = Wt[i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        Hinv = U[i1:i2].to(torch.float32)  # this block's rows of the factor in float32 (no [K, K] copy)
        Hinv1 = Hinv[:, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            gi = col_group[col]
            if not act_order and col % g == 0:  # entering a group: scales on updated weights
                end = min(col + g, k)
                cur = torch.cat([W1[i : min(i2 - i1, end - i1)], Wt[i2:end]], dim=0)
                scales_t[gi], zeros_t[gi] = grid.params(cur.T)
            d = Hinv1[i, i]
            wcol = W1[i]
            q = grid.codes(wcol, scales_t[gi], zeros_t[gi])
            Qt[col] = q
            err = (wcol - grid.dequant(q, scales_t[gi], zeros_t[gi])) / d
            W1[i:].addr_(Hinv1[i, i:], err, alpha=-1.0)  # spread the error over later columns
            Err1[i] = err
        Wt[i2:].addmm_(Hinv[:, i2:].T, Err1, alpha=-1.0)  # lazy batch update of later blocks
        loss += Err1.pow(2).sum(dim=0) / 2  # GPTQ's objective: (w - q)² / U_ii² / 2 per column
    del U
    H.set_()  # release the factor's storage (a handed-over H is left empty, as documented)
    del H

    Q = Qt.T
    if act_order:
        Q = Q[:, torch.argsort(perm)]
    stats = {
        "proxy_loss": float(loss.sum()),
        "damp": rel_damp,
        "dead_columns": int(dead.sum()),
        "seconds": time.perf_counter() - t0,
    }
    return Q, scales_t.T, zeros_t.T, stats
