"""Where calibration activations live between layers: in RAM (default) or in disk-backed buffers.

Passes that walk layers over stored calibration activations (rotate, GPTQ) pass every new
activation through ``buffers.keep(x, slot)``. In RAM each slot holds one tensor, its first
activation, and later ones of the same shape are copied into it: the long-lived activations are
allocated once instead of once per layer step, which fragmented glibc's heap (it serves tensors
under its 32 MB mmap threshold): SmolLM2's rotate at 128 x 512 tokens peaked at 2.09 GB, 0.49 GB
above the same run with every large tensor mmapped (stop 63). Spilled
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

    Invariant: ``keep(x, slot)`` equals ``x`` (values, dtype, shape) and is the slot's tensor, which
    later activations of the same slot rewrite in place: backed by the slot's file when spilled, in
    RAM the slot's first activation (held weakly: it lives as long as the pass holds it)."""

    def __init__(self, directory: Path | None = None):
        import weakref

        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.bytes_spilled = 0
        self.held: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    @property
    def spilled(self) -> bool:
        return self.directory is not None

    @torch.no_grad()
    def keep(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        if self.directory is None or x.device.type != "cpu":
            return self._in_ram(x, slot)
        path = self.directory / f"act-{slot}.bin"
        nbytes = x.numel() * x.element_size()
        if path.exists() and path.stat().st_size != nbytes:
            path.unlink()  # a different shape: a fresh file of the right size
        buf = torch.from_file(str(path), shared=True, size=x.numel(), dtype=x.dtype).view(x.shape)
        buf.copy_(x)
        self.bytes_spilled = max(self.bytes_spilled, nbytes * (slot + 1))
        return buf

    def _in_ram(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        """``x``'s values in the slot's tensor: ``x`` itself when the slot holds none of its shape,
        dtype and device yet (and ``x`` is contiguous), else copied into the one it holds."""
        held = self.held.get(slot)
        if held is None or (held.shape, held.dtype, held.device) != (x.shape, x.dtype, x.device):
            if x.is_contiguous():
                self.held[slot] = x
            return x
        if held.data_ptr() != x.data_ptr():
            held.copy_(x)
        return held
