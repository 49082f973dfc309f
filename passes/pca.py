"""PCA helpers for SliceGPT: streaming ``H = sum X^T X`` in float64 and its sorted eigenbasis."""
from __future__ import annotations

import math

import torch

from andactl.errors import ConfigError


SYMMETRIZE_BLOCK_ROWS = 256  # add_gram_'s averaging works on this many rows at a time (temporaries of rows x D)


def add_gram_(acc: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``acc += rowsᵀ rows`` in place, and returns ``acc``.

    Invariant: an exactly symmetric ``acc`` stays exactly symmetric. A BLAS may round the product's
    two triangles differently (MKL's kernels on AMD Zen 4 do; on the Xeon they came out equal), so
    each entry and its mirror are replaced by their mean, which leaves a sum that is already
    symmetric unchanged bit for bit ((a + a) / 2 == a). The averaging goes by blocks of
    SYMMETRIZE_BLOCK_ROWS rows, so it never holds a second [D, D] matrix (0.5 GB in float64 at
    D = 8192)."""
    acc.addmm_(rows.T, rows)
    D = acc.shape[0]
    for i in range(0, D, SYMMETRIZE_BLOCK_ROWS):
        j = min(i + SYMMETRIZE_BLOCK_ROWS, D)
        diag = acc[i:j, i:j]
        diag.copy_(diag.add(diag.T).mul_(0.5))
        if j < D:
            mean = acc[i:j, j:].add(acc[j:, i:j].T).mul_(0.5)
            acc[i:j, j:].copy_(mean)
            acc[j:, i:j].copy_(mean.T)
    return acc


class GramAccumulator:
    """Streaming uncentred Gram matrix ``H = sum_t x_t^T x_t`` over non-padding tokens.

    Invariant: ``H`` is float64, symmetric, and equals the Gram matrix of every token row added so
    far whose mask is non-zero; rows with mask 0 (padding) contribute nothing. Inputs are never
    stored: each batch is folded into ``H`` in row chunks and dropped.
    """

    def __init__(self, dim: int, device: torch.device | str = "cpu", chunk_rows: int = 8192):
        self.dim = int(dim)
        self.H = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=device)
        self.tokens = 0
        self.chunk_rows = int(chunk_rows)

    @torch.no_grad()
    def add(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Adds the rows of ``x`` (``[..., dim]``); ``mask`` (``x.shape[:-1]``) 0 marks padding."""
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[-1] != self.dim:
            raise ValueError(f"GramAccumulator of dim {self.dim} got rows of width {rows.shape[-1]}")
        if mask is not None:
            keep = mask.reshape(-1).to(rows.device) != 0
            rows = rows[keep]
        for start in range(0, rows.shape[0], self.chunk_rows):
            chunk = rows[start : start + self.chunk_rows].to(device=self.H.device, dtype=torch.float64)
            add_gram_(self.H, chunk)
        self.tokens += rows.shape[0]

    def all_reduce(self) -> None:
        """Under torchrun: ``H`` and ``tokens`` become the sums over every rank's calibration share."""
        from andactl.distributed import active, all_reduce_sum

        if active():
            all_reduce_sum(self.H)
            self.tokens = int(all_reduce_sum(torch.tensor([self.tokens], dtype=torch.float64, device=self.H.device)).item())


@torch.no_grad()
def pca_basis(H: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns, same order) of ``H + damp*mean(diag H)*I``.

    Invariant: the returned ``Q`` is orthogonal (float64) and ``Q^T H Q`` is diagonal; the damping
    only shifts eigenvalues, so the basis is that of ``H`` itself. Each eigenvector's sign is
    fixed (its largest-magnitude entry positive), so matrices equal up to rounding give bases
    equal up to rounding (1 process vs N processes, whose sums differ in order).
    """
    H = H.to(torch.float64).clone()
    H.diagonal().add_(damp * H.diagonal().mean())
    vals, vecs = torch.linalg.eigh(H)
    order = torch.argsort(vals, descending=True)
    return vals[order], _fixed_signs(vecs[:, order])


def _fixed_signs(Q: torch.Tensor) -> torch.Tensor:
    """``Q`` with each column's sign set so that its largest-magnitude entry is positive."""
    pivot = Q.gather(0, Q.abs().argmax(dim=0, keepdim=True))
    return Q * torch.where(pivot < 0, -1.0, 1.0).to(Q.dtype)


def sliced_dim(hidden_size: int, ratio: float, round_to: int) -> int:
    """``floor((1 - ratio) * D)`` rounded down to a multiple of ``round_to``; ``D`` when ratio is 0.

    Raises ConfigError when the result is smaller than ``round_to`` (nothing sensible to keep).
    """
    if ratio == 0.0:
        return int(hidden_size)
    d = math.floor((1.0 - ratio) * hidden_size + 1e-9)
    d -= d % round_to
    if d < round_to:
        raise ConfigError(
            f"slicing ratio {ratio} with round_to {round_to} keeps {d} of {hidden_size} hidden dims; "
            f"at least {round_to} must remain (use a smaller ratio or round_to)"
        )
    return d


def kept_variance(eigenvalues: torch.Tensor, d: int) -> float:
    """Fraction of the (damped) spectrum's total carried by the leading ``d`` components."""
    return float(eigenvalues[:d].sum() / eigenvalues.sum())


FISHER_ITERS = 300  # Adam steps of the subspace search (SmolLM2-135M at 25%: ~3 s per point)
FISHER_LR = 0.01  # Adam step on the unnormalised subspace matrix (its columns start at norm 1)


def fisher_estimate(R: torch.Tensor, H: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """``tr((R^T F R)(R^T H R))``: the K-FAC estimate (up to a constant) of the loss that removing
    the span of ``R``'s orthonormal columns costs, for a signal with Gram ``H`` whose loss gradient
    has Gram ``F``. With ``F = c I`` it is c times PCA's objective, the dropped energy ``tr(R^T H R)``."""
    return torch.trace((R.T @ F @ R) @ (R.T @ H @ R))


def _search_step(A: torch.Tensor, opt: torch.optim.Optimizer, Hn: torch.Tensor, Fn: torch.Tensor,
                 start: torch.Tensor, best: float) -> tuple[float, torch.Tensor | None]:
    """One Adam step of fisher_basis's subspace search over ``R = qr(A)``: returns (the ratio of
    R's fisher_estimate to ``start`` at ``A`` as it was before the step, a copy of that ``A`` when
    the ratio is below ``best``, else None: only an improving iterate is copied)."""
    ratio = fisher_estimate(torch.linalg.qr(A)[0], Hn, Fn) / start
    value = float(ratio.detach())
    at = A.detach().clone() if value < best else None
    opt.zero_grad()
    ratio.backward()
    opt.step()
    return value, at


def search_step_seconds(D: int, cut: int, steps: int = 3) -> float:
    """Seconds one step of fisher_basis's subspace search takes on this CPU at width ``D`` with
    ``cut`` dropped directions: the median of ``steps`` timed steps after one warm-up, on random
    float64 statistics of that shape (a step's work depends on the shape alone). For the dry run's
    estimate of `rotate --basis fisher`."""
    import time

    gen = torch.Generator().manual_seed(0)
    stats = []
    for _ in range(2):
        X = torch.randn(2 * D, D, generator=gen, dtype=torch.float64)
        G = X.T @ X
        stats.append(G / G.diagonal().sum())
    A = torch.linalg.qr(torch.randn(D, cut, generator=gen, dtype=torch.float64))[0].requires_grad_(True)
    opt = torch.optim.Adam([A], lr=FISHER_LR)
    start = fisher_estimate(A.detach(), *stats)
    times, best = [], 1.0
    with torch.enable_grad():
        for i in range(steps + 1):
            t0 = time.perf_counter()
            value, _ = _search_step(A, opt, *stats, start, best)
            best = min(best, value)
            if i:
                times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _ordered_by(H: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns of ``B`` (orthonormal) turned within their span so that ``B^T H B`` is diagonal,
    descending; returns (that diagonal, the turned columns)."""
    vals, V = torch.linalg.eigh(B.T @ H @ B)
    order = torch.argsort(vals, descending=True)
    return vals[order], B @ V[:, order]


@torch.no_grad()
def fisher_basis(H: torch.Tensor, F: torch.Tensor, d: int, iters: int = FISHER_ITERS,
                 lr: float = FISHER_LR) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A gradient-aware SliceGPT basis: (values, Q, estimate ratio). The last ``D - d`` columns of
    ``Q`` span the subspace whose removal has the smallest ``fisher_estimate`` found by Adam over
    ``R = qr(A)``, started from PCA's dropped subspace; the best iterate is kept, so the estimate is
    never above PCA's (the returned ratio, <= 1). PCA assumes every direction matters per unit of
    energy; ``F`` (the Gram of the loss gradient at the signal) says which do.

    Invariant: ``Q`` is orthogonal (float64); ``Q^T H Q`` is diagonal and descending within the kept
    and within the dropped columns, and ``values`` is that diagonal (so ``kept_variance`` is the
    share of ``H`` the kept columns carry); deterministic for given inputs. ``d >= D``: PCA's basis."""
    vals, Q = pca_basis(H)
    D = H.shape[0]
    if d >= D:
        return vals, Q, 1.0
    H = H.to(torch.float64)
    Hn = H / H.diagonal().sum()
    Fn = F.to(torch.float64) / F.diagonal().sum().clamp_min(1e-300)
    start = fisher_estimate(Q[:, d:], Hn, Fn)
    if not float(start) > 0.0:  # no gradient reaches the dropped directions: PCA is already optimal
        return vals, Q, 1.0
    A = Q[:, d:].clone().requires_grad_(True)
    best, best_A = 1.0, A.detach().clone()
    opt = torch.optim.Adam([A], lr=lr)
    with torch.enable_grad():
        for _ in range(iters):
            value, at = _search_step(A, opt, Hn, Fn, start, best)
            if at is not None:
                best, best_A = value, at
    dropped = torch.linalg.qr(best_A)[0]
    kept = torch.linalg.svd(torch.eye(D, dtype=torch.float64) - dropped @ dropped.T)[0][:, :d]
    (kv, kq), (dv, dq) = _ordered_by(H, kept), _ordered_by(H, dropped)
    return torch.cat([kv, dv]), _fixed_signs(torch.cat([kq, dq], dim=1)), best
