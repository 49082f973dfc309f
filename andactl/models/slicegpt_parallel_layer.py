"""The SliceGPT decoder layer for parallel-block architectures (phi): one norm, one shortcut.

A parallel block computes ``x + attn(norm(x)) + mlp(norm(x))``: attention and MLP read the same
normed input and add to the same residual, so the block has one input basis ``Q_in`` and one
output basis ``Q_out`` and one shortcut ``Q_in^T Q_out`` (as SliceGPT's reference code does for
Phi-2). State-dict keys are the HF ones plus ``model.layers.<i>.shortcut``.
"""
from __future__ import annotations

import torch

from andactl.models.slicegpt_layer import SliceGPTLayer, _keep_leading


class ParallelSliceGPTLayer(SliceGPTLayer):
    """Parallel pre-norm block ``n = norm(x); x = x @ S + attn(n) + mlp(n)``.

    Invariants: with ``shortcut`` ``None`` the forward equals the wrapped HF layer's forward in
    eval mode; ``S`` of shape ``[d_in, d_out]`` maps the residual from the block-input basis to the
    block-output basis. ``mask_dims`` = (input, after-attention, output) as for sequential layers;
    the middle entry is ignored (a parallel block has no residual point between its branches).
    """

    shortcuts = ("shortcut",)

    def forward(self, hidden_states: torch.Tensor, attention_mask=None, position_ids=None,
                past_key_values=None, use_cache: bool | None = False, position_embeddings=None,
                **kwargs) -> torch.Tensor:
        """Same call signature as transformers 5 decoder layers; returns the new hidden states."""
        ad = self._adapter
        attn_kwargs = dict(attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache, **kwargs)
        if past_key_values is not None:  # phi's decoder passes its cache as ``cache`` (in kwargs)
            attn_kwargs["past_key_values"] = past_key_values
        if position_embeddings is not None:
            attn_kwargs["position_embeddings"] = position_embeddings
        masks = self.mask_dims
        x = hidden_states if masks is None else _keep_leading(hidden_states, masks[0])
        n = ad.attn_norm(self)(x)
        update = ad.run_attention(self, n, attn_kwargs) + ad.run_mlp(self, n)
        x = self._add(x, self.shortcut, update)
        if masks is not None:
            x = _keep_leading(x, masks[2])
        return x
