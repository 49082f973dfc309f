"""The SliceGPT decoder layer: an HF sequential block with residual shortcut matrices.

``SliceGPTLayer`` adopts the HF layer's children under their own names (``self_attn``, ``mlp``,
the norms, OPT's ``fc1``/``fc2``...), so state-dict keys stay the HF ones
(``model.layers.3.self_attn.q_proj.weight``) plus two persistent buffers
(``model.layers.3.attn_shortcut``, ``model.layers.3.mlp_shortcut``), and every adapter accessor
(``adapter.attn_inputs(layer)``...) works on the wrapper exactly as on the HF layer.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from andactl.kernels import shortcut as kernel_shortcut
from andactl.models.stats import count_parameters  # noqa: F401  (re-exported: one counter for the project)

_SHORTCUTS = ("attn_shortcut", "mlp_shortcut")


def _keep_leading(x: torch.Tensor, d: int) -> torch.Tensor:
    """``x`` with coordinates ``d:`` of its last dim zeroed (what slicing them off computes)."""
    if d >= x.shape[-1]:
        return x
    out = x.clone()
    out[..., d:] = 0
    return out


class SliceGPTLayer(nn.Module):
    """Sequential pre-norm block ``x = r @ S_attn + attn(norm1(x)); x = r @ S_mlp + mlp(norm2(x))``.

    Invariants: with both shortcuts ``None`` the forward equals the wrapped HF layer's forward in
    eval mode (dropout is not applied: this is an inference module); a shortcut ``S`` of shape
    ``[d_in, d_out]`` maps the residual from the basis of the block input to the basis of the block
    output. ``mask_dims`` (a plain attribute, ``None`` normally) makes an unsliced rotated layer
    compute what the sliced layer computes, by zeroing the trailing residual coordinates.
    """

    shortcuts: tuple[str, ...] = _SHORTCUTS  # names of the residual shortcut buffers, in block order

    def __init__(self, layer: nn.Module, adapter) -> None:
        super().__init__()
        for name, child in layer.named_children():
            self.add_module(name, child)
        for key, value in vars(layer).items():  # plain attributes HF code may read (attention_type...)
            if not key.startswith("_") and key != "training" and not isinstance(value, (nn.Module, torch.Tensor)):
                setattr(self, key, value)
        for name in self.shortcuts:
            self.register_buffer(name, None, persistent=True)
        self.source_class = type(layer).__name__
        self.mask_dims: tuple[int, int, int] | None = None
        object.__setattr__(self, "_adapter", adapter)

    def _add(self, residual: torch.Tensor, shortcut: torch.Tensor | None, update: torch.Tensor) -> torch.Tensor:
        if shortcut is None:
            return residual + update
        return kernel_shortcut.residual_add(residual, shortcut, update)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Same call signature as transformers 5 decoder layers; returns the new hidden states."""
        ad = self._adapter
        attn_kwargs = dict(attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache, **kwargs)
        if past_key_values is not None:  # transformers < 5.24 name; newer ones pass ``cache`` in kwargs
            attn_kwargs["past_key_values"] = past_key_values
        if position_embeddings is not None:
            attn_kwargs["position_embeddings"] = position_embeddings
        masks = self.mask_dims
        x = hidden_states if masks is None else _keep_leading(hidden_states, masks[0])
        h = ad.run_attention(self, ad.attn_norm(self)(x), attn_kwargs)
        x = self._add(x, self.attn_shortcut, h)
        if masks is not None:
            x = _keep_leading(x, masks[1])
        h = ad.run_mlp(self, ad.mlp_norm(self)(x))
        x = self._add(x, self.mlp_shortcut, h)
        if masks is not None:
            x = _keep_leading(x, masks[2])
        return x

    def extra_repr(self) -> str:
        shapes = {n: tuple(getattr(self, n).shape) if getattr(self, n) is not None else None for n in self.shortcuts}
        return f"source={self.source_class}, " + ", ".join(f"{k}={v}" for k, v in shapes.items())


def install_layers(adapter) -> nn.ModuleList:
    """Replaces every HF decoder layer in ``adapter.layers()`` by a SliceGPTLayer (idempotent).

    Invariant: the model's function is unchanged (shortcuts start as ``None``)."""
    cls = SliceGPTLayer
    if adapter.parallel_blocks:
        from andactl.models.slicegpt_parallel_layer import ParallelSliceGPTLayer as cls
    layers = adapter.layers()
    for i, layer in enumerate(layers):
        if not isinstance(layer, SliceGPTLayer):
            layers[i] = cls(layer, adapter)
    return layers


@contextlib.contextmanager
def simulate_slicing(layers: nn.ModuleList, dims: list[tuple[int, int, int]]) -> Iterator[None]:
    """Within the block, layer ``i`` zeroes residual coordinates beyond ``dims[i]`` =
    (input, after-attention, output). A rotated, unsliced model then computes exactly what the
    model sliced to those dims computes (zero-padded)."""
    old = [layer.mask_dims for layer in layers]
    try:
        for layer, d in zip(layers, dims):
            layer.mask_dims = tuple(d)
        yield
    finally:
        for layer, d in zip(layers, old):
            layer.mask_dims = d
