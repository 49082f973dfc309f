"""What a run keeps in memory: calibration activations between layers (in RAM a slot is allocated
once and rewritten in place; spilled, a file per slot), and no tensor left in the source's mapped
weights file once ``slice`` has cut the model."""
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


def test_slice_leaves_no_tensor_in_the_source_file_mapping(tiny_hf_dir):
    """A loaded model's tensors point into its mapped model.safetensors; after ``slice`` none does
    (a surviving tied table kept the whole mapping, and the pages of every cut tensor, resident), and
    own_file_backed's copies equal what they replace."""
    from tiny_models import tiny_calibration

    from andactl.manager import PassManager
    from andactl.context import PassContext
    from andactl.models.file_backed import own_file_backed, weight_file_ranges
    from andactl.models.loading import load_model

    def mapped(model):
        ranges = weight_file_ranges()
        return [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
                if any(a <= t.untyped_storage().data_ptr() < b for a, b in ranges)]

    loaded = load_model(str(tiny_hf_dir))
    assert mapped(loaded.model)  # what the test is about: transformers maps the file
    ctx = PassContext(model=loaded.model, adapter=loaded.adapter, tokenizer=loaded.tokenizer)
    ctx._calibration = tiny_calibration(samples=4, seqlen=32)
    PassManager.from_recipe([{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}]).run(ctx)
    assert mapped(ctx.model) == []
    again = load_model(str(tiny_hf_dir)).model
    before = {n: t.clone() for n, t in again.state_dict().items()}
    assert own_file_backed(again) > 0 and mapped(again) == []
    assert all(torch.equal(t, before[n]) for n, t in again.state_dict().items())


def test_tensors_sharing_a_mapped_storage_stay_tied(tmp_path):
    """own_file_backed copies a tensor out of a mapped ``.safetensors`` file only when no other
    tensor of the model shares its storage (two copies would untie them)."""
    from torch import nn

    from andactl.models.file_backed import own_file_backed, weight_file_ranges

    def mapped_floats(name, n):
        path = tmp_path / name
        path.write_bytes(torch.arange(n, dtype=torch.float32).numpy().tobytes())
        return torch.from_file(str(path), shared=False, size=n, dtype=torch.float32)

    shared, alone = mapped_floats("a.safetensors", 4096), mapped_floats("b.safetensors", 4096)
    model = nn.Module()
    model.a, model.b = nn.Parameter(shared[:2048]), nn.Parameter(shared[2048:])
    model.c = nn.Parameter(alone)
    assert len(weight_file_ranges()) >= 2
    assert own_file_backed(model) == 4096 * 4
    assert model.a.untyped_storage().data_ptr() == model.b.untyped_storage().data_ptr() == shared.untyped_storage().data_ptr()
    assert model.c.data_ptr() != alone.data_ptr() and torch.equal(model.c, alone)
