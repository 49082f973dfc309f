"""KV caches of Hugging Face causal LMs: how to pass one across transformers versions, and one
that grows without copying itself on every step.

Invariant: the argument name cache_kwargs returns is one the model's ``forward`` accepts, so no
deprecated alias (and no FutureWarning) is used.
"""
from __future__ import annotations

import inspect

from transformers.cache_utils import DynamicCache, DynamicLayer


def cache_kwargs(model) -> tuple[str, dict]:
    """(name of the KV-cache argument/output, extra kwargs): ``cache`` in newer transformers,
    ``past_key_values`` before; ``logits_to_keep=1`` where supported (only the next token's logits
    are computed, as a real generate loop does)."""
    params = inspect.signature(model.forward).parameters
    extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    return ("cache" if "cache" in params else "past_key_values"), extra


class ReservedLayer(DynamicLayer):
    """A DynamicLayer whose keys / values are views of buffers with spare room: a step writes its
    new rows in place instead of concatenating (copying) the whole cache, and a buffer grows by
    half its length (at least 256 tokens) when full. Invariant: ``keys`` / ``values`` hold
    exactly the tokens a DynamicLayer would, in the same order; any parent method that replaces
    them (crop, beam reordering, reset) is honoured: the next update copies them into a new buffer."""

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = self.keys.shape[-2] if self.keys.numel() else 0
        t = key_states.shape[-2]
        buf_k, buf_v = getattr(self, "_buf_k", None), getattr(self, "_buf_v", None)
        fits = (buf_k is not None and n + t <= buf_k.shape[-2] and buf_k.shape[:-2] == key_states.shape[:-2]
                and buf_v.shape[:-2] == value_states.shape[:-2] and buf_k.dtype == key_states.dtype
                and buf_v.dtype == value_states.dtype and buf_k.device == key_states.device
                and (n == 0 or (self.keys.data_ptr() == buf_k.data_ptr()
                                and self.values.data_ptr() == buf_v.data_ptr())))
        if not fits:
            cap = n + t + max(256, (n + t) // 2)
            buf_k = key_states.new_empty((*key_states.shape[:-2], cap, key_states.shape[-1]))
            buf_v = value_states.new_empty((*value_states.shape[:-2], cap, value_states.shape[-1]))
            if n:
                buf_k[..., :n, :].copy_(self.keys)
                buf_v[..., :n, :].copy_(self.values)
            self._buf_k, self._buf_v = buf_k, buf_v
        buf_k[..., n:n + t, :].copy_(key_states)
        buf_v[..., n:n + t, :].copy_(value_states)
        self.keys, self.values = buf_k[..., :n + t, :], buf_v[..., :n + t, :]
        return self.keys, self.values


def reserved_cache(model):
    """A transformers DynamicCache whose layers reserve room to grow (no per-step copy of the
    cache), or None when the model's layers are not all full attention (sliding-window or linear
    layers need transformers' own cache types; the caller then passes no cache)."""
    config = getattr(model, "config", None)
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    types = getattr(text, "layer_types", None)
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True) is not False:
        return None
    if types is not None and any(t != "full_attention" for t in types):
        return None
    cache = DynamicCache()
    cache.layer_class_to_replicate = ReservedLayer
    return cache


def reserved_cache_arg(model) -> dict:
    """``{cache argument name: reserved_cache(model)}`` for a forward or ``generate`` call, or ``{}``
    where the model needs transformers' own cache (it then makes one itself)."""
    cache = reserved_cache(model)
    return {} if cache is None else {cache_kwargs(model)[0]: cache}

