"""Pass ``quantize_weights``: group-wise INT4 (RTN or GPTQ) of every linear an Anda activation feeds.

Quantized linears: the ``adapter.anda_linears(layer)`` of every layer (Llama: q/k/v/o/gate/up/down;
OPT: q/k/v/out_proj/fc1/fc2). Embeddings, the LM head and SliceGPT shortcut matrices stay in the
model dtype. Each quantized linear's weight is replaced IN PLACE by its dequantized value in the
model dtype (fake-quant, so evaluation and the Anda search see the INT4 model), and the exact
``Int4Weight`` is kept for packing in ``ctx.int4_weights`` (the PassContext field): a mapping
``{qualified module name: Int4Weight}`` — a dict, or files in the spill directory when the run
streams (``andactl.models.int4_spill``) — replaced by each run (tensors never go into ``ctx.report``).

GPTQ runs the standard sequential flow: the inputs of layer 0 (and the keyword arguments the
decoder passes to its layers) are captured over the calibration batches by a forward pre-hook
that stops the forward; then each layer in turn is run on the stored inputs while hooks on its
linears accumulate ``H = 2/n Σ x xᵀ`` (padding tokens masked out), its linears are quantized, and
the layer is re-run with the quantized weights to produce the next layer's inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from andactl.distributed import all_reduce_sum
from andactl.errors import ConfigError
from andactl.formats.int4 import quantize_weight_rtn, resolve_group_size
from andactl.models.capture import capture_layer0_inputs
from andactl.passbase import QUANTIZED, Pass, PassConfig, register_pass
from andactl.passes.gptq import HessianAccumulator, gptq_quantize


@dataclass
class QuantizeWeightsConfig(PassConfig):
    """``method``: rtn | gptq; ``group_size``: positive multiple of 64 or -1 (one group per row);
    ``symmetric``: zero point 8 (else per-group zero points; the default: on SmolLM2 asymmetric
    groups of 64 cost 3.8% more bytes than symmetric groups of 128 and cut the W4 perplexity
    penalty from +69% to +33%, README "INT4 weight groups"); ``damp``: GPTQ damping as a fraction
    of mean(diag H); ``act_order``: GPTQ column order by decreasing H_ii (static groups)."""

    method: Literal["rtn", "gptq"] = "gptq"
    group_size: int = 64
    symmetric: bool = False
    damp: float = 0.01
    act_order: bool = False

    def validate(self) -> None:
        resolve_group_size(self.group_size, 64)
        if not 0.0 <= self.damp < 1.0:
            raise ConfigError(f"quantize_weights damp must be in [0, 1), got {self.damp}")


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _relative_error(w: torch.Tensor, w_hat: torch.Tensor) -> float:
    norm = float(torch.linalg.vector_norm(w.float()))
    diff = float(torch.linalg.vector_norm(w.float() - w_hat.float()))
    return diff / norm if norm > 0 else diff


@register_pass
class QuantizeWeights(Pass):
    """INT4 weight-only quantization (W4A16 reference point of the Anda search)."""

    name = "quantize_weights"
    Config = QuantizeWeightsConfig
    requires = ()
    provides = ("int4_weights",)
    excludes = QUANTIZED  # its weights are read from float linears: never from an artifact already quantized
    streams = True
    description = "group-wise INT4 weights (RTN or GPTQ) for every linear an Anda activation feeds"

    def _quantize_modules(self, mods: list[nn.Linear], H: torch.Tensor | None, names: dict[int, str],
                          store, errors: dict) -> None:
        """Quantizes ``mods`` (linears reading one activation) and writes the fake-quant weights.
        GPTQ treats output rows independently given H, so the linears sharing H are quantized as
        one stacked weight (same result as one by one, fewer column sweeps)."""
        cfg = self.config
        weights = [m.weight.detach() for m in mods]
        label = ", ".join(names[id(m)] for m in mods)
        stacked = torch.cat(weights, dim=0) if len(weights) > 1 else weights[0]
        if H is None:
            q_all = quantize_weight_rtn(stacked, cfg.group_size, cfg.symmetric)
        else:
            q_all, _ = gptq_quantize(stacked, H, cfg.group_size, cfg.symmetric, cfg.damp, cfg.act_order, name=label,
                                     consume_H=True)  # H is handed over (take_H): never copied
        start = 0
        for m, w in zip(mods, weights):
            q = q_all.rows(start, start + w.shape[0]) if len(mods) > 1 else q_all
            start += w.shape[0]
            w_hat = q.dequantize().to(device=w.device)
            name = names[id(m)]
            store[name], errors[name] = q, _relative_error(w, w_hat)
            m.weight.data.copy_(w_hat.to(m.weight.dtype))

    def run(self, ctx) -> dict:
        cfg = self.config
        adapter = ctx.adapter
        model = ctx.model
        names = {id(m): n for n, m in model.named_modules()}
        layers = list(adapter.layers())
        store = ctx.layers.int4_weights()  # name -> Int4Weight; on disk when streaming
        errors: dict[str, float] = {}
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if cfg.method == "rtn":
                    with ctx.progress("quantize_weights (rtn)", total=len(layers)) as advance:
                        for i in range(len(layers)):
                            with ctx.layers.onload(i) as layer:  # one layer materialised at a time when streaming
                                for mods in adapter.anda_linears(layer).values():
                                    if mods:
                                        self._quantize_modules(mods, None, names, store, errors)
                            advance()
                    tokens = 0
                else:
                    tokens = self._run_gptq(ctx, layers, names, store, errors)
        finally:
            model.train(was_training)
        ctx.int4_weights = store
        mean = sum(errors.values()) / len(errors) if errors else 0.0
        ctx.log.info("quantize_weights: %s INT4 on %d linears, mean relative error %.4f", cfg.method, len(errors), mean)
        return {
            "method": cfg.method,
            "group_size": cfg.group_size,
            "symmetric": cfg.symmetric,
            "act_order": cfg.act_order if cfg.method == "gptq" else False,
            "calibration_tokens": tokens,
            "modules": errors,
            "mean_relative_error": mean,
            "max_relative_error": max(errors.values(), default=0.0),
        }

    def _run_gptq(self, ctx, layers, names, store, errors) -> int:
        """Sequential GPTQ over the layers; returns the number of calibration tokens used."""
        captured = capture_layer0_inputs(ctx.model, layers[0], ctx.calibration())
        keep = ctx.activation_buffers().keep  # RAM, or disk-backed when spilled (same values)
        inputs = [keep(c.x, k) for k, c in enumerate(captured)]
        kwargs_list = [c.kwargs for c in captured]
        masks = [c.mask for c in captured]
        tokens = int(sum(int((m != 0).sum()) for m in masks))
        tokens = int(all_reduce_sum(torch.tensor([tokens], dtype=torch.float64)).item())  # torchrun: all ranks
        current_mask: list[torch.Tensor | None] = [None]
        with ctx.progress("quantize_weights (gptq)", total=len(layers)) as advance:
            for i in range(len(layers)):
                with ctx.layers.onload(i) as layer:  # one layer materialised at a time when streaming
                    # linears reading one Anda activation (q/k/v, gate/up) share its input, so one
                    # accumulator, fed by a hook on the first of them, serves the whole group
                    groups = [mods for mods in ctx.adapter.anda_linears(layer).values() if mods]
                    accs = [HessianAccumulator(mods[0].weight.shape[1], mods[0].weight.device) for mods in groups]

                    def make_hook(acc: HessianAccumulator):
                        def hook(module, args, output):
                            acc.add(args[0].detach(), current_mask[0])
                        return hook

                    handles = [mods[0].register_forward_hook(make_hook(acc)) for mods, acc in zip(groups, accs)]
                    try:
                        for x, kw, mask in zip(inputs, kwargs_list, masks):
                            current_mask[0] = mask
                            layer(x, **kw)
                    finally:
                        for h in handles:
                            h.remove()
                    # widest input first: its [K, K] Hessian is released before the others'
                    # stacked weights are worked on (the groups are independent given their H)
                    for j in sorted(range(len(groups)), key=lambda j: -accs[j].in_features):
                        accs[j].all_reduce()  # torchrun: Hessian over every rank's share (identical on all)
                        self._quantize_modules(groups[j], accs[j].take_H(), names, store, errors)
                    del accs
                    inputs = [keep(_first(layer(x, **kw)).detach(), k) for k, (x, kw) in enumerate(zip(inputs, kwargs_list))]
                    advance()
        return tokens
