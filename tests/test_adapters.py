"""Adapters expose the right modules, and their attention/MLP calls recompose each HF layer."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_inputs, tiny_model

from andactl.errors import ModelError
from andactl.models.adapters import (LlamaAdapter, OPTAdapter, Phi3Adapter, Qwen2Adapter, Qwen3Adapter, SmolLM3Adapter,
                                     get_adapter)

FAMILIES = {"llama": LlamaAdapter, "qwen2": Qwen2Adapter, "qwen3": Qwen3Adapter, "smollm3": SmolLM3Adapter,
            "phi3": Phi3Adapter, "opt": OPTAdapter}


@pytest.mark.parametrize("family", FAMILIES)
def test_dispatch_and_accessors(family):
    model, _ = tiny_model(family)
    ad = get_adapter(model)
    assert type(ad) is FAMILIES[family]
    assert ad.norm_kind == ("layernorm" if family == "opt" else "rmsnorm")
    D = ad.hidden_size
    assert len(ad.layers()) == 2
    assert ad.embeddings()[0].weight.shape[1] == D
    for layer in ad.layers():
        assert [m.in_features for m in ad.attn_inputs(layer)] == ([D] if family == "phi3" else [D, D, D])
        assert ad.attn_output(layer).out_features == D
        assert all(m.in_features == D for m in ad.mlp_inputs(layer))
        assert ad.mlp_output(layer).out_features == D
        assert ad.attn_norm(layer) is not ad.mlp_norm(layer)
    assert ad.head().in_features == D
    kinds = set(ad.linear_names().values())
    assert kinds == {"qkv", "o", "u", "d"}
    per_layer = {"opt": 6, "phi3": 4}.get(family, 7)  # phi3: qkv_proj, o_proj, gate_up_proj, down_proj
    assert len(ad.linear_names()) == 2 * per_layer


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_calls_recompose_the_layer(family):
    """x + attn(norm1(x)) then + mlp(norm2(.)) through the adapter == the HF layer's output."""
    model, _ = tiny_model(family, dtype=torch.float64)
    ad = get_adapter(model)
    captured = {}

    def grab(mod, args, kwargs):
        captured["x"], captured["kw"] = args[0], dict(kwargs)

    handle = ad.layers()[0].register_forward_pre_hook(grab, with_kwargs=True)
    out = {}
    h2 = ad.layers()[0].register_forward_hook(lambda m, a, o: out.setdefault("y", o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        model(tiny_inputs())
    handle.remove(), h2.remove()
    layer, x, kw = ad.layers()[0], captured["x"], captured["kw"]
    with torch.no_grad():
        h = x + ad.run_attention(layer, ad.attn_norm(layer)(x), kw)
        y = h + ad.run_mlp(layer, ad.mlp_norm(layer)(h))
    assert torch.allclose(y, out["y"], atol=1e-12, rtol=0)


def test_unsupported_architecture_lists_supported():
    from transformers import AutoModelForCausalLM, GPTNeoXConfig

    model = AutoModelForCausalLM.from_config(GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                                            num_attention_heads=2, intermediate_size=64))
    with pytest.raises(ModelError, match="unsupported architecture 'gpt_neox'; supported model types: "
                       "llama, mistral, opt, phi, phi3, qwen2, qwen3, smollm3"):
        get_adapter(model)


def test_post_layernorm_opt_refused():
    from transformers import AutoModelForCausalLM, OPTConfig

    model = AutoModelForCausalLM.from_config(OPTConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, ffn_dim=64,
                                                        num_attention_heads=2, do_layer_norm_before=False, word_embed_proj_dim=32))
    with pytest.raises(ModelError, match="do_layer_norm_before=False"):
        get_adapter(model)
