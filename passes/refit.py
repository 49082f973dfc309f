"""Least-squares refit of a sliced block's output linears to the dense model's residual stream
(training-free; optional in ``rotate``: ``refit: true``).

Slicing changes what every later block sees: its inputs lose the discarded principal components
and inherit the drift of every block before it. While ``rotate`` walks the blocks it keeps the
DENSE model's residual stream beside the sliced one and refits each block's output linears
(o_proj, down; in the original coordinates, before the block is rotated): ridge least squares from
the linear's input in the sliced model to the dense residual after the sub-block minus the sliced
residual before it, so each write into the residual stream also absorbs the upstream drift, pulled
towards the current weight: ``W' = argmin sum ||z W'^T - t||^2 + lam ||W' - W||^2`` with
``lam = ridge * mean(diag(Z^T Z))``.

The ridge is chosen per linear by held-out error: every fourth block of 64 token positions (of
seq/8 for sequences shorter than 512) is held out, each ``ridge`` of ``RIDGES`` is fitted on the rest and scored on the held-out tokens
against keeping ``W``; the best (possibly ``W`` itself: no refit) is then refitted on all tokens.
Sums are float64 over non-padding tokens. (An input-side refit, mapping the sliced normalised
inputs of q/k/v and gate/up onto the dense ones, was measured on SmolLM2 and changed nothing: not
kept.)
"""
from __future__ import annotations

import torch
from torch import nn

RIDGES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
HELD_OUT_BLOCK, HELD_OUT_EVERY = 64, 4


def _held_out(mask: torch.Tensor | None, shape: torch.Size, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) token selectors over ``shape[:-1]`` = [batch, seq]: held-out = every
    HELD_OUT_EVERY-th block of min(HELD_OUT_BLOCK, seq // 8) positions; padding in neither."""
    block = max(1, min(HELD_OUT_BLOCK, shape[-2] // 8))
    pos = torch.arange(shape[-2], device=device)
    val = ((pos // block) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1).expand(shape[:-1])
    real = torch.ones(shape[:-1], dtype=torch.bool, device=device) if mask is None else mask.to(device) != 0
    return (real & ~val).reshape(-1), (real & val).reshape(-1)


class OutputFit:
    """Streams ``Z^T Z`` and ``Z^T T`` (train and held-out) for one output linear: ``Z`` its input
    in the sliced model (captured by a forward pre-hook), ``T`` the target of its output."""

    def __init__(self, lin: nn.Linear):
        dev = lin.weight.device
        self.lin = lin
        n, m = lin.in_features, lin.out_features
        self.zz = [torch.zeros(n, n, dtype=torch.float64, device=dev) for _ in range(2)]
        self.zt = [torch.zeros(n, m, dtype=torch.float64, device=dev) for _ in range(2)]
        self.z: torch.Tensor | None = None
        self._hook = lin.register_forward_pre_hook(self._capture)

    def _capture(self, module, args) -> None:
        self.z = args[0].detach()

    @torch.no_grad()
    def add(self, target: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Adds the last captured input (``[batch, seq, in]``) against ``target`` (``[batch, seq, out]``)."""
        z = self.z.reshape(-1, self.z.shape[-1]).to(torch.float64)
        t = target.reshape(-1, target.shape[-1]).to(torch.float64)
        if self.lin.bias is not None:
            t = t - self.lin.bias.detach().to(torch.float64)
        for part, sel in enumerate(_held_out(mask, self.z.shape, z.device)):
            zs, ts = z[sel], t[sel]
            self.zz[part].addmm_(zs.T, zs)
            self.zt[part].addmm_(zs.T, ts)
        self.z = None

    def _solve(self, zz: torch.Tensor, zt: torch.Tensor, ridge: float) -> torch.Tensor:
        w = self.lin.weight.detach().to(torch.float64)
        lam = ridge * float(zz.diagonal().mean().clamp_min(1e-30))
        A = zz.clone()
        A.diagonal().add_(lam)
        return torch.linalg.solve(A, zt + lam * w.T).T

    @staticmethod
    def _error(w: torch.Tensor, zz: torch.Tensor, zt: torch.Tensor) -> float:
        """Held-out squared error of ``w`` up to the constant ``sum ||t||^2``."""
        return float(((w @ zz) * w).sum() - 2.0 * (w * zt.T).sum())

    @torch.no_grad()
    def apply(self) -> float | None:
        """Unhooks; sets the weight to the refit of the best held-out ridge and returns that ridge,
        or leaves the weight as it is (None) when no ridge beats it on the held-out tokens."""
        self._hook.remove()
        w0 = self.lin.weight.detach().to(torch.float64)
        best, best_err = None, self._error(w0, self.zz[1], self.zt[1])
        for ridge in RIDGES:
            err = self._error(self._solve(self.zz[0], self.zt[0], ridge), self.zz[1], self.zt[1])
            if err < best_err:
                best, best_err = ridge, err
        if best is not None:
            w = self._solve(self.zz[0] + self.zz[1], self.zt[0] + self.zt[1], best)
            self.lin.weight.data = w.contiguous().to(self.lin.weight.dtype)
        return best
