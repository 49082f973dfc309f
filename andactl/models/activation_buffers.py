"""Where calibration activations live between layers: in RAM (default) or in disk-backed buffers.

Passes that walk layers over stored calibration activations (rotate, GPTQ) pass every new
activation through ``buffers.keep(x, slot)``. In RAM that returns ``x`` itself. Spilled
(``--max-memory`` below the run's need with them in RAM; see andactl/dry_run/memory.py), each slot is a
file ``act-<slot>.bin`` in the run's spill directory, memory-mapped with ``torch.from_file``
(shared, so pages are written back to the file and the kernel can drop them instead of holding
them as anonymous memory), and ``keep`` copies ``x`` into it. The values, dtype and shape are the
same either way, so a spilled run computes exactly what the in-RAM run computes.
"""
from __future__ import annotations

from pathlib import Path

import torch


class ActivationBuffers:
    """``keep(x, slot)``: the tensor to hold for calibration batch ``slot`` (see module docstring).

    Invariant: ``keep(x, slot)`` equals ``x`` (values, dtype, shape) and, when spilled, is backed by
    the slot's file, which is reused (rewritten in place) by later activations of the same slot."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.bytes_spilled = 0

    @property
    def spilled(self) -> bool:
        return self.directory is not None

    @torch.no_grad()
    def keep(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        if self.directory is None or x.device.type != "cpu":
            return x
        path = self.directory / f"act-{slot}.bin"
        nbytes = x.numel() * x.element_size()
        if path.exists() and path.stat().st_size != nbytes:
            path.unlink()  # a different shape: a fresh file of the right size
        buf = torch.from_file(str(path), shared=True, size=x.numel(), dtype=x.dtype).view(x.shape)
        buf.copy_(x)
        self.bytes_spilled = max(self.bytes_spilled, nbytes * (slot + 1))
        return buf
