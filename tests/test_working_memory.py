"""Calibration activations between layers (andactl/models/activation_buffers.py): in RAM a slot is
allocated once and rewritten in place, with the values of what was kept; spilled, a file per slot."""
from __future__ import annotations

import gc

import torch

from andactl.models.activation_buffers import ActivationBuffers


def test_a_ram_slot_is_allocated_once_and_rewritten_in_place():
    """A layer step's new activation is copied into the slot's tensor (no new long-lived allocation
    per step: the heap fragmentation that cost SmolLM2's rotate 0.3 GB), equal to what was kept; a
    new shape takes a new tensor; a slot lives only as long as the pass holds it."""
    buffers = ActivationBuffers()
    first = torch.randn(2, 5, 3)
    assert buffers.keep(first, 0) is first
    other = buffers.keep(torch.randn(2, 5, 3), 1)
    step = torch.randn(2, 5, 3)
    kept = buffers.keep(step, 0)
    assert kept is first and torch.equal(kept, step) and kept.data_ptr() != step.data_ptr()
    assert buffers.keep(kept, 0) is first  # keeping the slot's own tensor copies nothing
    wider = torch.randn(2, 5, 4)
    assert buffers.keep(wider, 0) is wider
    strided = torch.randn(5, 2, 3).transpose(0, 1)
    assert buffers.keep(strided, 2) is strided and 2 not in buffers.held  # a view is kept as it is, never adopted
    del first, kept, wider, other, step
    gc.collect()
    assert len(buffers.held) == 0


def test_spilled_slots_hold_the_same_values(tmp_path):
    ram, disk = ActivationBuffers(), ActivationBuffers(tmp_path / "spill")
    for step in range(3):
        x = torch.randn(3, 4, generator=torch.Generator().manual_seed(step))
        a, b = ram.keep(x.clone(), 0), disk.keep(x.clone(), 0)
        assert torch.equal(a, x) and torch.equal(b, x)
    assert disk.bytes_spilled == 3 * 4 * 4
