"""In-place, block-by-block float64 updates of big weight matrices.

SliceGPT's fusion and rotation compute every weight update in float64. Converting a whole
``vocab x D`` head or embedding to float64 costs 4x its bf16 bytes (twice that with the result):
for a 1B model that is ~1.6 GB of transient RAM for one matrix. These helpers convert and update a
band of rows (or columns) at a time and write the result back into the tensor's own storage, so
the transient is at most ``CHUNK_ELEMENTS`` float64 values whatever the matrix size.
"""
from __future__ import annotations

from typing import Callable

import torch

CHUNK_ELEMENTS = 1 << 22  # float64 values per band: 32 MiB


@torch.no_grad()
def map_rows_(t: torch.Tensor, fn: Callable[[torch.Tensor, slice], torch.Tensor]) -> torch.Tensor:
    """``t[rows] <- fn(t[rows] as float64, rows)`` band by band over the first dim, in place.

    Invariant: the result equals ``fn`` applied to the whole float64 matrix whenever ``fn`` acts on
    each row independently (row-wise maps, right multiplication ``X @ Q``)."""
    step = max(1, CHUNK_ELEMENTS // max(1, t[0].numel()))
    for start in range(0, t.shape[0], step):
        rows = slice(start, min(start + step, t.shape[0]))
        t[rows] = fn(t[rows].to(torch.float64), rows).to(t.dtype)
    return t


@torch.no_grad()
def map_cols_(t: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``t[:, cols] <- fn(t[:, cols] as float64)`` band by band over the second dim, in place.

    Invariant: equals ``fn`` on the whole float64 matrix whenever ``fn`` acts on each column
    independently (left multiplication ``Q^T @ X``, means over the first dim)."""
    step = max(1, CHUNK_ELEMENTS // max(1, t.shape[0]))
    for start in range(0, t.shape[1], step):
        cols = slice(start, min(start + step, t.shape[1]))
        t[:, cols] = fn(t[:, cols].to(torch.float64)).to(t.dtype)
    return t


@torch.no_grad()
def matvec64(t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``t @ v`` in float64 (``v`` float64), one band of rows of ``t`` converted at a time."""
    out = torch.empty(t.shape[0], dtype=torch.float64, device=t.device)
    step = max(1, CHUNK_ELEMENTS // max(1, t[0].numel()))
    for start in range(0, t.shape[0], step):
        out[start : start + step] = t[start : start + step].to(torch.float64) @ v
    return out
