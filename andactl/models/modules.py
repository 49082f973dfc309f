"""Small modules the passes put into models."""
from __future__ import annotations

import torch
from torch import nn


class RMSN(nn.Module):
    """Weightless RMSNorm: ``x / sqrt(sum(x**2) / hidden_size + eps)``.

    ``hidden_size`` is the ORIGINAL hidden size of the model and is kept after slicing: the sum of
    squares over the kept principal components approximates the full sum, so dividing by the
    original size (not the sliced width) preserves the function. Computed in float32 (or float64
    when the input is float64), returned in the input dtype.
    """

    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x if dtype == torch.float64 else x.float()
        ms = xf.pow(2).sum(-1, keepdim=True) / self.hidden_size
        return (xf * torch.rsqrt(ms + self.eps)).to(dtype)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, eps={self.eps}"
