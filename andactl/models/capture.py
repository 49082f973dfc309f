"""Calibration inputs at the first decoder layer, for passes that then walk layer by layer."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class _Stop(Exception):
    """Raised by the layer-0 hook to end a calibration forward early."""


@dataclass
class LayerInput:
    """One calibration batch at a layer boundary: the residual ``x`` [B, S, D], the keyword
    arguments the decoder passes to its layers (attention mask, position embeddings, ...; no
    cache), and the token mask [B, S] (0 = padding)."""

    x: torch.Tensor
    kwargs: dict
    mask: torch.Tensor


def resident_device(model: nn.Module) -> torch.device:
    """The device of the model's first tensor that is not ``meta`` (a streamed model's layers are;
    a sliced tied model's embedding holds no tensor of its own)."""
    tensors = (t for t in list(model.parameters()) + list(model.buffers()) if not t.is_meta)
    return next(tensors, torch.empty(0)).device


@torch.no_grad()
def capture_layer0_inputs(model: nn.Module, layer0: nn.Module, calibration) -> list[LayerInput]:
    """Runs ``model`` on every calibration batch only up to ``layer0`` and returns, per batch, that
    layer's input and call kwargs; nothing downstream of the embeddings is computed or kept."""
    device = resident_device(model)
    found: list[LayerInput] = []

    def hook(module, args, kwargs):
        kw = dict(kwargs)
        x = args[0] if args else kw.pop("hidden_states")
        # no KV cache, under whichever name this transformers passes it ("cache" since 5.24)
        cache_key = "cache" if "cache" in kw or "past_key_values" not in kw else "past_key_values"
        kw[cache_key], kw["use_cache"] = None, False
        found.append(LayerInput(x.detach(), kw, torch.empty(0)))
        raise _Stop

    handle = layer0.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for batch in calibration.batches():
            mask = batch["attention_mask"].to(device)
            try:
                model(input_ids=batch["input_ids"].to(device), attention_mask=mask, use_cache=False)
            except _Stop:
                pass
            found[-1].mask = mask
    finally:
        handle.remove()
    return found
