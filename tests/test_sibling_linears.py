"""q/k/v and gate/up as one fused call (andactl/models/sibling_linears.py): linked groups give
bit-identical logits to separate calls on tiny packed llama / qwen2 (biases) / opt models, in
float32 and bf16, for decode-sized and AMX-sized inputs; misuse falls back; reloads refresh."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_calibration, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.context import PassContext
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter
from andactl.models.anda_linear import AndaLinear
from andactl.models.sibling_linears import link_siblings

build = pytest.importorskip("andactl.kernels.build")
_RES = build.load()
pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")


def packed(family: str, symmetric: bool, seed: int = 0):
    model, _ = tiny_model(family, seed=seed)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=32)
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64, "symmetric": symmetric},
                             {"pass": "set_anda_bits", "bits": [6, 5, 7, 7]}, {"pass": "pack"}]).run(ctx)
    from andactl.kernels.backend import set_model_backend

    assert set_model_backend(ctx.model, "cpp") == "cpp"
    return ctx.model.eval()


def groups(model):
    return {id(m.siblings): m.siblings for m in model.modules() if isinstance(m, AndaLinear) and m.siblings}


@pytest.mark.parametrize("family,symmetric", [("llama", False), ("llama", True), ("qwen2", False), ("qwen3", False),
                                                ("opt", True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linked_groups_are_bit_identical(family, symmetric, dtype):
    model = packed(family, symmetric).to(dtype)
    n_groups = len(groups(model))
    assert n_groups == (2 if family == "opt" else 4)  # q/k/v per layer (+ gate/up where the MLP has them)
    for tokens in (1, 3, 24):  # VNNI sizes and the AMX path (from 8-11 tokens on AMX CPUs)
        ids = torch.randint(0, 128, (2, tokens), generator=torch.Generator().manual_seed(tokens))
        with torch.inference_mode():
            linked = model(ids).logits
            assert all(g._operands is not None and not g._pending for g in groups(model).values())
            link_siblings(model, False)
            alone = model(ids).logits
            link_siblings(model, True)
        assert torch.equal(linked, alone)
    with torch.no_grad():  # outside inference mode (version counters) as well
        assert torch.equal(model(ids).logits, alone)


def test_misuse_falls_back_and_reload_refreshes():
    model = packed("llama", False)
    attn = model.model.layers[0].self_attn
    x = torch.randn(1, 5, 64)
    with torch.no_grad():
        want_k = torch.ops.andactl.anda_linear(x, attn.k_proj.mantissa_bits, "truncate", *attn.k_proj.fused_operands(),
                                               attn.k_proj.bias, 64, attn.k_proj.out_features)
        q = attn.q_proj(x)  # k and v now pending for x
        other = x.clone()
        assert torch.equal(attn.k_proj(other), want_k)  # another tensor: runs alone, group disabled
        assert not attn.q_proj.siblings.enabled
        assert torch.equal(attn.q_proj(x), q)
    link_siblings(model, True)
    donor = packed("llama", False, seed=3)
    model.load_state_dict(donor.state_dict())
    ids = torch.randint(0, 128, (1, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, donor(ids).logits)


def test_reference_backend_unlinks():
    from andactl.kernels.backend import set_model_backend

    model = packed("llama", False)
    assert groups(model)
    assert set_model_backend(model, "reference") == "reference"
    assert not groups(model)
