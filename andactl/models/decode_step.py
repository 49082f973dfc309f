"""Lean decode steps and prefills for Llama-family models (Llama, Mistral, Qwen2, Qwen3, SmolLM3; plain
or SliceGPT layers, dense or packed linears).

A decode step of a small model is mostly framework: transformers' model forward builds masks and
output records, and every layer goes through ~15 module calls, decorators and keyword plumbing
around a handful of tensor operations. ``enable(model)`` gives the model's decoder (``model.model``)
a forward that runs unpadded sequences — one-token steps on a cache, and prefills of an empty
cache — as a plain loop over the layers' own parameters and modules: the projections, activation,
embedding and rotary-embedding modules are called as transformers calls them, the RMSNorms and the
rotary product are one C++ op each (``andactl::rms_norm``, ``andactl::rotary``: kernels/rows.py),
and attention is ``andactl::decode_attention`` for a step and transformers' own SDPA call (causal,
no mask) for a prefill. Every other call (multi-token calls on a filled cache, padded batches,
hidden-state or attention outputs, training, hooks, models it does not recognise) goes to
transformers' forward unchanged.

Invariant: the lean loop returns the hidden states transformers' forward (with ``andactl_sdpa``
attention) returns for the same call, up to the float32 summation order of the norms' sum of
squares (the rotary op and everything else compute the same roundings in the same order), and
appends the same keys and values to the cache. It is only installed on models whose attention
runs ``andactl_sdpa`` (models.decode_attention) and whose decoder, layers, attention, MLP, norms
and rotary embedding are exactly the recognised classes, with no module hooks.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_outputs import BaseModelOutputWithPast

from andactl.kernels import attention, rows, shortcut
from andactl.models import decode_attention
from andactl.models.kv_cache import ReservedLayer, cache_kwargs
from andactl.models.modules import RMSN

# The families whose decoder, layer, attention, MLP and RMSNorm code the lean step reproduces
# (transformers class-name prefixes; their modeling code is the same for a full-attention step).
FAMILIES = ("Llama", "Mistral", "Qwen2", "Qwen3", "SmolLM3")
# Families whose attention RMS-normalises each head of q and k (``q_norm`` / ``k_norm``) before the rotary.
HEAD_NORMED = ("Qwen3",)
_CACHE_LAYERS = (DynamicLayer, ReservedLayer)  # cache layers whose update appends (full attention)


def _family(module: nn.Module, part: str) -> str | None:
    name = type(module).__name__
    return next((f for f in FAMILIES if name == f + part), None)


def _norm_fn(norm: nn.Module, family: str):
    """(x -> normed x) computing what ``norm.forward`` computes (``andactl::rms_norm``: up to the
    float32 summation order of the sum of squares), or None if the norm is not recognised."""
    if _hooked((norm,)):
        return None
    if _family(norm, "RMSNorm") == family:  # transformers: weight * (x * rsqrt(mean(x^2) + eps)).to(dtype)
        w, eps = norm.weight, float(norm.variance_epsilon)
        return lambda x: (torch.ops.andactl.rms_norm(x, w, eps, float(x.shape[-1])) if x.dtype in rows.DTYPES
                          else norm.forward(x))
    if type(norm) is RMSN:
        eps, divisor = float(norm.eps), float(norm.hidden_size)
        return lambda x: (torch.ops.andactl.rms_norm(x, None, eps, divisor) if x.dtype in rows.DTYPES
                          else norm.forward(x))
    return None


def _hooked(modules) -> bool:
    """Whether any of ``modules`` has forward (pre-)hooks, which a lean step would not run."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' apply_rotary_pos_emb for one tensor ([B, heads, T, D], cos / sin [B, 1, T, D])."""
    if x.dtype in rows.DTYPES and cos.dtype == sin.dtype == x.dtype:
        return torch.ops.andactl.rotary(x, cos, sin)
    return rows.rotary_reference(x, cos, sin)


class _Layer:
    """One decoder layer's parts, resolved once: norms, projections, shortcuts."""

    def __init__(self, layer: nn.Module, family: str):
        from andactl.models.slicegpt_layer import SliceGPTLayer

        sliced = type(layer) is SliceGPTLayer
        if sliced and layer.source_class != family + "DecoderLayer":
            raise _Unsupported(f"layer {layer.source_class}")
        if not sliced and _family(layer, "DecoderLayer") != family:
            raise _Unsupported(f"layer {type(layer).__name__}")
        self.layer, self.sliced = layer, sliced
        att, mlp = layer.self_attn, layer.mlp
        if _family(att, "Attention") != family or _family(mlp, "MLP") != family:
            raise _Unsupported("attention or MLP class")
        if getattr(att, "sliding_window", None):
            raise _Unsupported("sliding-window attention")
        self.norm1 = _norm_fn(layer.input_layernorm, family)
        self.norm2 = _norm_fn(layer.post_attention_layernorm, family)
        if self.norm1 is None or self.norm2 is None:
            raise _Unsupported("norm class")
        head_norms = (att.q_norm, att.k_norm) if family in HEAD_NORMED else ()
        self.q_norm, self.k_norm = (_norm_fn(n, family) for n in head_norms) if head_norms else (None, None)
        if head_norms and (self.q_norm is None or self.k_norm is None):
            raise _Unsupported("q / k norm class")
        self.q, self.k, self.v, self.o = att.q_proj, att.k_proj, att.v_proj, att.o_proj
        self.gate, self.up, self.down, self.act = mlp.gate_proj, mlp.up_proj, mlp.down_proj, mlp.act_fn
        self.head_dim, self.scaling, self.idx = att.head_dim, att.scaling, att.layer_idx
        self.rope = bool(getattr(att, "use_rope", True))  # SmolLM3's NoPE layers skip the rotary product
        self.qkv, self.gate_up = (self.q, self.k, self.v), (self.gate, self.up)
        self.qkv_group, self.gate_up_group = self._group(self.qkv), self._group(self.gate_up)
        self.modules = (layer, att, mlp, self.q, self.k, self.v, self.o, self.gate, self.up, self.down, self.act,
                        layer.input_layernorm, layer.post_attention_layernorm, *head_norms)
        if _hooked(self.modules):
            raise _Unsupported("module hooks")

    @staticmethod
    def _group(mods: tuple):
        """The linked sibling group (sibling_linears.py) that is exactly ``mods``, in order, or None."""
        group = getattr(mods[0], "siblings", None)
        if group is None or len(group.members) != len(mods):
            return None
        return group if all(a is b for a, b in zip(group.members, mods)) else None

    @staticmethod
    def siblings(x: torch.Tensor, mods: tuple, group) -> tuple[torch.Tensor, ...]:
        """The outputs of ``mods`` (q/k/v or gate/up) for ``x``: one fused call where ``group`` (resolved
        at enable time) is still their linked group of packed linears (bit-identical), else their own
        calls."""
        if group is not None and mods[0].siblings is group:
            outs = group.run_all(x)
            if outs is not None:
                return outs
        return tuple(m(x) for m in mods)

    def residual_add(self, r: torch.Tensor, name: str, update: torch.Tensor) -> torch.Tensor:
        """The residual after a shortcut (SliceGPT layers) plus ``update``, as SliceGPTLayer._add
        computes it (kernels.shortcut.residual_add)."""
        s = getattr(self.layer, name) if self.sliced else None
        return r + update if s is None else shortcut.residual_add(r, s, update)

    def __call__(self, h: torch.Tensor, cos, sin, cache) -> torch.Tensor:
        b, t, d = h.shape[0], h.shape[1], self.head_dim
        x = self.norm1(h)
        q, k, v = self.siblings(x, self.qkv, self.qkv_group)
        q, k, v = (y.view(b, t, -1, d) for y in (q, k, v))
        if self.q_norm is not None:  # Qwen3: each head of q and k normed over its D values
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (y.transpose(1, 2) for y in (q, k, v))
        if self.rope:
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        k, v = cache.update(k, v, self.idx)
        if t == 1:  # a decode step: [B, H, 1, D], the same bytes as [B, 1, H, D]
            a = torch.ops.andactl.decode_attention(q, k, v, float(self.scaling)).transpose(1, 2)
        else:  # a prefill of an empty cache: transformers' SDPA call, causal, no mask ([B, T, H, D])
            a = sdpa_attention_forward(self.layer.self_attn, q, k, v, None, dropout=0.0, scaling=self.scaling)[0]
        a = self.o(a.reshape(b, t, -1).contiguous())
        h = self.residual_add(h, "attn_shortcut", a)
        x = self.norm2(h)
        g, u = self.siblings(x, self.gate_up, self.gate_up_group)
        m = self.down(self.act(g) * u)
        return self.residual_add(h, "mlp_shortcut", m)


class _Unsupported(Exception):
    """The model is not one the lean step reproduces (message: why)."""


class DecodeStep:
    """The lean loop of one decoder (``model.model``), resolved at enable time."""

    def __init__(self, decoder: nn.Module):
        family = _family(decoder, "Model")
        if family is None:
            raise _Unsupported(f"decoder {type(decoder).__name__}")
        if _family(decoder.rotary_emb, "RotaryEmbedding") != family:
            raise _Unsupported("rotary embedding class")
        self.decoder = decoder
        self.layers = [_Layer(layer, family) for layer in decoder.layers[: decoder.config.num_hidden_layers]]
        self.final_norm = _norm_fn(decoder.norm, family)
        if self.final_norm is None:
            raise _Unsupported("final norm class")
        self.modules = (decoder, decoder.norm, *(m for layer in self.layers for m in layer.modules))

    def takes(self, input_ids, attention_mask, position_ids, cache, inputs_embeds, use_cache, kwargs) -> bool:
        """Whether this call is one the lean loop reproduces: unpadded sequences, a one-token step on a
        cache or a prefill of an empty one."""
        if (input_ids is None or inputs_embeds is not None or input_ids.dim() != 2 or input_ids.shape[1] < 1
                or cache is None or use_cache is False or input_ids.device.type != "cpu" or not self._plain(kwargs)):
            return False
        b, t = input_ids.shape
        n = self._cache_length(cache, b)
        if n is None or (t > 1 and n > 0) or (t == 1 and n == 0):
            return False  # several tokens after a cached prefix, or one token alone: transformers' forward
        if attention_mask is not None and not (attention_mask.dim() == 2 and attention_mask.shape[1] == n + t
                                               and bool(attention_mask.all())):
            return False  # padded sequences: transformers' masks
        cp = kwargs.get("cache_position")
        if cp is not None and not (cp.numel() == t and torch.equal(cp.reshape(-1).cpu(), torch.arange(n, n + t))):
            return False
        return position_ids is None or (position_ids.dim() == 2 and position_ids.shape[1] == t
                                        and bool((position_ids.cpu() == torch.arange(n, n + t)).all()))

    def _plain(self, kwargs) -> bool:
        """No outputs beyond the hidden states, no training or gradients, andactl_sdpa attention,
        no simulated slicing, no hooks (registered since enable: e.g. simulated Anda quantization),
        no keyword the lean loop does not know."""
        cfg = self.decoder.config
        wants = ("output_attentions", "output_hidden_states")
        if any(kwargs.get(k) or getattr(cfg, k, False) for k in wants) or set(kwargs) - {*wants, "return_dict",
                                                                                         "cache_position"}:
            return False
        return (not self.decoder.training and not torch.is_grad_enabled()
                and getattr(cfg, "_attn_implementation", None) == decode_attention.NAME
                and not any(layer.sliced and layer.layer.mask_dims is not None for layer in self.layers)
                and not _hooked(self.modules))

    def _cache_length(self, cache, batch: int) -> int | None:
        """The tokens every layer of ``cache`` holds for ``batch`` sequences (all the same, in
        appending full-attention layers; 0 for a cache none of whose layers holds anything yet),
        else None."""
        layers = getattr(cache, "layers", None)
        if layers is None or not hasattr(cache, "get_seq_length"):
            return None
        layers = layers[: len(self.layers)]
        if any(type(c) not in _CACHE_LAYERS for c in layers):
            return None
        if not layers:  # layers made on first use: of the class the cache replicates
            return 0 if getattr(cache, "layer_class_to_replicate", None) in _CACHE_LAYERS else None
        if not any(c.is_initialized for c in layers):
            return 0 if len(layers) == len(self.layers) else None
        if len(layers) < len(self.layers) or not all(c.is_initialized for c in layers):
            return None
        n = cache.get_seq_length()
        if n < 1 or any(c.keys.shape[-2] != n or c.keys.shape[0] != batch for c in layers):
            return None
        return n

    def __call__(self, input_ids, cache, cache_key: str) -> BaseModelOutputWithPast:
        dec = self.decoder
        n = cache.get_seq_length()
        h = dec.embed_tokens(input_ids)
        position_ids = torch.arange(n, n + input_ids.shape[1], device=h.device).unsqueeze(0)
        cos, sin = dec.rotary_emb(h, position_ids=position_ids)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        for layer in self.layers:
            h = layer(h, cos, sin, cache)
        return BaseModelOutputWithPast(last_hidden_state=self.final_norm(h), **{cache_key: cache})


class _Forward:
    """``decoder.forward`` while the lean loop is installed: the calls it takes go to ``step``, all
    others to the decoder class's own (transformers') forward. A copy or pickle of the model
    carries a passthrough instead (``step`` None, bound to the copied decoder): the step's parts
    belong to the original model, so a copy runs transformers' forward until it is enabled itself."""

    def __init__(self, decoder: nn.Module, step: DecodeStep | None, cache_key: str):
        self.decoder, self.step, self.cache_key = decoder, step, cache_key

    def __getstate__(self) -> dict:
        return {"decoder": self.decoder, "step": None, "cache_key": self.cache_key}

    def __call__(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, use_cache=None,
                 **kwargs):
        step, key = self.step, self.cache_key
        if step is not None:
            cache = kwargs.get(key)
            rest = {k: v for k, v in kwargs.items() if k != key}
            if step.takes(input_ids, attention_mask, position_ids, cache, inputs_embeds, use_cache, rest):
                return step(input_ids, cache, key)
        return type(self.decoder).forward(self.decoder, input_ids=input_ids, attention_mask=attention_mask,
                                          position_ids=position_ids, inputs_embeds=inputs_embeds,
                                          use_cache=use_cache, **kwargs)


def _installed(decoder) -> _Forward | None:
    fwd = decoder.__dict__.get("forward") if isinstance(decoder, nn.Module) else None
    return fwd if isinstance(fwd, _Forward) else None


def why_not(model) -> str | None:
    """None when ``enable`` would install the lean step on ``model``, else the reason it would not."""
    try:
        _step(model)
    except _Unsupported as e:
        return str(e)
    return None


def _step(model) -> DecodeStep:
    decoder = getattr(model, "model", None)
    if decoder is None or not isinstance(decoder, nn.Module):
        raise _Unsupported("no decoder at model.model")
    if getattr(getattr(model, "config", None), "_attn_implementation", None) != decode_attention.NAME:
        raise _Unsupported("attention is not andactl_sdpa (decode_attention.enable)")
    if not (attention.has_cpu_kernel() and rows.has_cpu_kernels()):
        raise _Unsupported("the C++ extension's kernels are not loaded")
    if _hooked((decoder,)):
        raise _Unsupported("decoder hooks")
    if "forward" in decoder.__dict__ and _installed(decoder) is None:
        raise _Unsupported("the decoder's forward is already replaced by something else")
    return DecodeStep(decoder)


def enable(model) -> bool:
    """Install the lean decode step on ``model`` (after ``decode_attention.enable``); True if
    installed, False (model untouched) when the model is not one it reproduces (``why_not``)."""
    try:
        step = _step(model)
    except _Unsupported:
        return False
    model.model.forward = _Forward(model.model, step, cache_kwargs(model)[0])
    return True


def disable(model) -> None:
    """Undo :func:`enable` (transformers' forward again); a no-op where it was not installed."""
    decoder = getattr(model, "model", None)
    if decoder is not None and _installed(decoder) is not None:
        del decoder.__dict__["forward"]


def enabled_on(model) -> bool:
    """Whether the lean step is installed on ``model``."""
    fwd = _installed(getattr(model, "model", None))
    return fwd is not None and fwd.step is not None


def switch_on(model) -> tuple[bool, bool]:
    """``decode_attention.enable`` then, where it switched, :func:`enable`: (attention switched,
    lean loop installed) — what ``generate`` and ``bench`` run under ``--attention auto``."""
    switched = decode_attention.enable(model)
    return switched, switched and enable(model)


@contextmanager
def enabled(model):
    """``decode_attention.enable`` and :func:`enable` for the duration of the block (both undone on
    exit, even on error)."""
    with decode_attention.enabled(model):
        installed = enable(model)
        try:
            yield model
        finally:
            if installed:
                disable(model)


__all__ = ["FAMILIES", "DecodeStep", "disable", "enable", "enabled", "enabled_on", "switch_on", "why_not"]
