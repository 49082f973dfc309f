"""One copy of the INT4 codes in memory (andactl/models/anda_linear.py): once a packed module has run
on the CPU kernels, its canonical ``weight_packed`` buffer is dropped and the prepacked copy (its
own, or its slice of the sibling group's) is the only one; ``weight_packed``, state_dict, .to(),
load_state_dict, re-linking, deep copies and parameter counts all still see exactly the loaded
codes, and the outputs do not change."""
from __future__ import annotations

import copy

import pytest
import torch
from test_sibling_linears import packed

from andactl.models.anda_linear import AndaLinear
from andactl.models.sibling_linears import link_siblings
from andactl.models.stats import count_parameters


def _linears(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, AndaLinear)}


def _run(model, tokens=3, seed=0):
    ids = torch.randint(0, 128, (2, tokens), generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model(ids).logits


@pytest.mark.parametrize("family,symmetric", [("llama", False), ("qwen2", True)])
def test_codes_live_once_and_read_back_exactly(family, symmetric):
    model = packed(family, symmetric)
    mods = _linears(model)
    codes = {n: m.weight_packed.clone() for n, m in mods.items()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = count_parameters(model)
    before = _run(model)
    assert all(m.codes_released() and m._buffers["weight_packed"] is None for m in mods.values())
    grouped = [m for m in mods.values() if m.siblings is not None]
    assert grouped and all(m._wpp_cache is None for m in grouped)  # their codes: the group's copy only
    for n, m in mods.items():
        assert torch.equal(m.weight_packed, codes[n]), n
    after = model.state_dict()
    assert list(after) == list(state)  # same keys, same order
    assert all(torch.equal(after[k], v) for k, v in state.items())
    assert count_parameters(model) == params
    assert torch.equal(_run(model), before)  # runs on from the prepacked copies
    twin = copy.deepcopy(model)
    assert all(torch.equal(m.weight_packed, codes[n]) for n, m in _linears(twin).items())
    assert torch.equal(_run(twin), before)


def test_to_relink_and_reload_restore_the_codes():
    model = packed("llama", False)
    mods = _linears(model)
    codes = {n: m.weight_packed.clone() for n, m in mods.items()}
    before = _run(model)
    grouped = {n for n, m in mods.items() if m.siblings is not None}
    link_siblings(model, False)  # a module leaving its group gets its codes back first
    assert all(m.codes_released() == (n not in grouped) for n, m in mods.items())  # the rest keep their copy
    assert all(torch.equal(m.weight_packed, codes[n]) for n, m in mods.items())
    assert torch.equal(_run(model), before)
    link_siblings(model, True)
    _run(model)
    model.to("cpu")  # _apply: the buffers are real tensors again before the move
    assert all(not m.codes_released() and torch.equal(m._buffers["weight_packed"], codes[n])
               for n, m in mods.items())
    assert torch.equal(_run(model), before)
    # load_state_dict after a release: the new codes are the ones that run
    other = packed("llama", False, seed=3)
    want = _run(other)
    assert all(m.codes_released() for m in mods.values())
    model.load_state_dict(other.state_dict())
    assert all(torch.equal(m.weight_packed, o.weight_packed) for m, o in zip(mods.values(), _linears(other).values()))
    assert torch.equal(_run(model), want)


def test_reference_backend_after_release_reads_the_same_codes():
    model = packed("llama", True)
    cpp = _run(model, tokens=5)
    for m in _linears(model).values():
        assert m.codes_released()
        m.backend = "reference"
    torch.testing.assert_close(_run(model, tokens=5), cpp, rtol=1e-4, atol=1e-4)
