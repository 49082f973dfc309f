"""Decode-step attention through ``andactl::decode_attention`` for Hugging Face models.

``enable(model)`` switches a model whose attention runs torch's SDPA to the registered
implementation ``andactl_sdpa``: identical to transformers' ``sdpa`` (same function, same masks)
except for one-token queries with no mask (a decode step of unpadded sequences: every cached key is
visible) on a CPU where the C++ kernel has a SIMD path, which go to the kernel. Prefill, padded
batches, sliding-window masks, training and other devices keep torch's SDPA.

Invariant: the attention output differs from ``sdpa``'s only by float32 summation order (the kernel
keeps scores and sums in float32 as torch's flash kernel does); generation is unchanged for every
model, CPU and dtype the switch does not apply to.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from andactl.kernels import attention

NAME = "andactl_sdpa"


def _fast(query, key, value, attention_mask, dropout, kwargs) -> bool:
    """Whether this call is a one-token, unmasked CPU step the kernel takes (enable() already checked
    that the kernel is loaded with a SIMD path for the model's head size)."""
    return (query.shape[2] == 1 and attention_mask is None and not dropout and query.device.type == "cpu"
            and not (torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad))
            and kwargs.get("softcap") is None and kwargs.get("position_bias") is None
            and not kwargs.get("output_attentions", False)
            and query.dtype == key.dtype == value.dtype and query.shape[0] == key.shape[0]
            and query.shape[-1] == key.shape[-1] == value.shape[-1] and key.shape[1] >= 1
            and query.shape[1] % key.shape[1] == 0 and key.shape[2] >= 1)


def attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                      is_causal: bool | None = None, **kwargs):
    """transformers' attention-function signature: (output [B, T, H, D], None)."""
    if _fast(query, key, value, attention_mask, dropout, kwargs):
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        out = attention.decode_attention(query, key, value, scale)  # [B, H, 1, D]: same bytes as [B, 1, H, D]
        return out.transpose(1, 2), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, **kwargs)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    if NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(NAME, attention_forward)
        AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def head_dim(config) -> int | None:
    """The attention head size of a transformers config (``head_dim`` or hidden / heads)."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    dim = getattr(text, "head_dim", None)
    heads = getattr(text, "num_attention_heads", None)
    if not dim and heads:
        dim = getattr(text, "hidden_size", 0) // heads
    return int(dim) if dim else None


def enable(model) -> bool:
    """Switch ``model`` (a transformers PreTrainedModel using ``sdpa``) to ``andactl_sdpa`` when the
    C++ kernel (built / loaded here on first use) has a SIMD path for its head size on this CPU;
    True if switched, False (model untouched) otherwise."""
    from andactl.kernels import build

    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(model, "set_attn_implementation"):
        return False
    build.load()  # never raises; without the extension nothing is switched
    dim = head_dim(config)
    if dim is None or not attention.vectorized(dim):
        return False
    _register()
    model.set_attn_implementation(NAME)
    return getattr(model.config, "_attn_implementation", None) == NAME


def disable(model) -> None:
    """Undo :func:`enable` (back to ``sdpa``); a no-op for other models."""
    if getattr(getattr(model, "config", None), "_attn_implementation", None) == NAME:
        model.set_attn_implementation("sdpa")


@contextmanager
def enabled(model):
    """``enable(model)`` for the duration of the block (restored even on error)."""
    switched = enable(model)
    try:
        yield model
    finally:
        if switched:
            disable(model)


__all__ = ["NAME", "attention_forward", "disable", "enable", "enabled", "head_dim"]
