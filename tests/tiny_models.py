"""Random tiny decoder-only models (llama, qwen2, qwen3, smollm3, phi3, opt; phi with parallel blocks) and
calibration data for tests.

The models are built from transformers configs with random weights; norm scales/shifts and
linear biases are randomised too so that fusion and centring are really exercised.
"""
from __future__ import annotations

import torch
from torch import nn

from andactl.data.calibration import CalibrationData

FAMILIES = ("llama", "qwen2", "qwen3", "smollm3", "phi3", "opt")
VOCAB = 128
HIDDEN = 64


def tiny_config(family: str):
    """The transformers config of a tiny ``family`` model (hidden 64, 2 layers, 4 heads)."""
    from transformers import (LlamaConfig, OPTConfig, Phi3Config, PhiConfig, Qwen2Config, Qwen3Config,
                              SmolLM3Config)

    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=128)
    if family == "llama":  # GQA and tied embeddings, like SmolLM2
        return LlamaConfig(**common, intermediate_size=96, num_key_value_heads=2, tie_word_embeddings=True,
                           initializer_range=0.1)
    if family == "qwen2":
        return Qwen2Config(**common, intermediate_size=96, num_key_value_heads=2, tie_word_embeddings=False,
                           initializer_range=0.1)
    if family == "qwen3":  # per-head q/k norms, head_dim set apart from hidden / heads
        return Qwen3Config(**common, intermediate_size=96, num_key_value_heads=2, head_dim=32,
                           tie_word_embeddings=True, initializer_range=0.1)
    if family == "smollm3":  # the second layer without rotary embedding (NoPE)
        return SmolLM3Config(**common, intermediate_size=96, num_key_value_heads=2, no_rope_layers=[1, 0],
                             tie_word_embeddings=True, initializer_range=0.1, pad_token_id=0, bos_token_id=1,
                             eos_token_id=2)
    if family == "phi3":  # fused qkv_proj and gate_up_proj, partial rotary
        return Phi3Config(**common, intermediate_size=96, num_key_value_heads=2, partial_rotary_factor=0.5,
                          tie_word_embeddings=False, initializer_range=0.1, pad_token_id=0, bos_token_id=1,
                          eos_token_id=2)
    if family == "opt":
        return OPTConfig(**common, ffn_dim=96, word_embed_proj_dim=HIDDEN, do_layer_norm_before=True,
                         enable_bias=True, tie_word_embeddings=True, init_std=0.1, pad_token_id=1)
    if family == "phi":  # parallel blocks, partial rotary, biased head (Phi-2 layout)
        return PhiConfig(**common, intermediate_size=96, partial_rotary_factor=0.5, tie_word_embeddings=False,
                         initializer_range=0.1)
    raise ValueError(f"unknown tiny model family {family!r}; known: {', '.join(FAMILIES)}")


@torch.no_grad()
def _randomise(model: nn.Module, gen: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
        elif "Norm" in type(module).__name__:
            if getattr(module, "weight", None) is not None:
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=gen))
            if getattr(module, "bias", None) is not None:
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))


def tiny_model(family: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    """``(model, None)``: a random tiny ``family`` model in ``dtype``, eval mode, same for a seed."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family))
    _randomise(model, torch.Generator().manual_seed(seed + 1))
    return model.to(dtype).eval(), None


def fresh_model(config, dtype: torch.dtype = torch.float32):
    """A new model from ``config`` (e.g. to rebuild an artifact's structure), eval mode."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(config).to(dtype).eval()


def tiny_calibration(samples: int = 8, seqlen: int = 32, batch_size: int = 4, seed: int = 0) -> CalibrationData:
    """Random token ids (no padding) as calibration data."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (samples, seqlen), generator=gen)
    return CalibrationData(ids, torch.ones_like(ids), batch_size)


def tiny_inputs(batch: int = 2, seqlen: int = 16, seed: int = 1) -> torch.Tensor:
    """Random evaluation token ids."""
    return torch.randint(2, VOCAB, (batch, seqlen), generator=torch.Generator().manual_seed(seed))


def _rmsnorm_float64(module: nn.Module):
    def forward(x: torch.Tensor) -> torch.Tensor:
        xf = x.to(torch.float64)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)
        return (module.weight.to(torch.float64) * y).to(x.dtype)

    return forward


@torch.no_grad()
def reference_logits(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits of ``model``, with HF's RMSNorms computed in float64 for float64 models (HF casts
    them to float32 internally, which alone moves float64 logits by ~1e-7)."""
    patched = []
    if next(model.parameters()).dtype == torch.float64:
        for module in model.modules():
            if type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
                module.forward = _rmsnorm_float64(module)
                patched.append(module)
    try:
        return model(input_ids).logits
    finally:
        for module in patched:
            del module.forward


def tiny_sliced(family: str = "llama", ratio: float = 0.25):
    """A pass context holding a tiny ``family`` model after fuse_norms, rotate and slice at
    ``ratio`` (SliceGPT layers with shortcut matrices, weightless RMSN norms)."""
    from andactl.context import PassContext
    from andactl.models.adapters import get_adapter
    from andactl.passes.fuse_norms import FuseNorms
    from andactl.passes.rotate import Rotate, RotateConfig
    from andactl.passes.slice import Slice

    model, _ = tiny_model(family)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=tiny_calibration())
    with torch.no_grad():
        FuseNorms().run(ctx)
        Rotate(RotateConfig(ratio=ratio)).run(ctx)
        Slice().run(ctx)
    return ctx
