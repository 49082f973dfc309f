"""Structured MLP pruning: remove, in every decoder layer, the MLP neurons that write the least energy
into the residual stream (the same number per layer, so the pruned model is its architecture with a
smaller ``intermediate_size`` and loads with nothing new).

A neuron ``i`` of a layer is row ``i`` of each MLP input linear (rows ``i + g * I`` of a fused
gate/up linear with ``g`` parts), its bias entry, and column ``i`` of the output linear. Its score is
``E[a_i^2] * ||W_out[:, i]||^2`` over the calibration tokens (``a`` = the output linear's input): the
expected squared norm of what the neuron adds to the residual stream, ignoring cross terms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from andactl.distributed import all_reduce_sum
from andactl.errors import ConfigError
from andactl.models.capture import resident_device
from andactl.models.slicegpt_layer import count_parameters
from andactl.passbase import QUANTIZED, Pass, PassConfig, register_pass

# names the supported configs give the MLP intermediate width (llama/qwen/phi/phi3: the first; opt: the second)
WIDTH_KEYS = ("intermediate_size", "ffn_dim")
ROWS_PER_FORWARD = 4  # calibration rows per scoring forward (bounds the activations held at once)


@dataclass
class PruneMLPConfig(PassConfig):
    """``ratio``: fraction of each layer's MLP neurons to remove; the kept count is
    ``floor((1 - ratio) * I)`` rounded down to a multiple of ``round_to`` (64 = the INT4 weight and
    Anda activation group along the output linear's input, so no group is padded)."""

    ratio: float = 0.2
    round_to: int = 64

    def validate(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise ConfigError(f"prune ratio must be in (0, 1), got {self.ratio}")
        if self.round_to < 1:
            raise ConfigError(f"round_to must be >= 1, got {self.round_to}")


def kept_neurons(width: int, ratio: float, round_to: int) -> int:
    """Neurons kept of ``width``: ``floor((1 - ratio) * width)`` rounded down to a multiple of
    ``round_to``; ConfigError when that leaves none or removes none."""
    keep = math.floor((1.0 - ratio) * width + 1e-9) // round_to * round_to
    if keep <= 0:
        raise ConfigError(f"prune ratio {ratio} with round_to {round_to} keeps no neuron of {width}")
    if keep >= width:
        raise ConfigError(f"prune ratio {ratio} with round_to {round_to} removes no neuron of {width}")
    return keep


def width_key(config) -> str:
    """The config attribute holding the MLP intermediate width; ConfigError if there is none."""
    for key in WIDTH_KEYS:
        if isinstance(getattr(config, key, None), int):
            return key
    raise ConfigError(f"prune: the model config names no MLP width ({' / '.join(WIDTH_KEYS)})")


@torch.no_grad()
def neuron_energy(ctx, outputs: list[nn.Linear]) -> list[torch.Tensor]:
    """Per layer, ``sum over calibration tokens of a_i^2`` (float64) for the input ``a`` of each
    output linear; padded positions (attention mask 0) count nothing; summed over every rank's
    calibration share, so all ranks remove the same neurons. Runs the decoder only."""
    device = resident_device(ctx.model)
    sums = [torch.zeros(lin.in_features, dtype=torch.float64, device=device) for lin in outputs]
    mask_now: list[torch.Tensor] = []

    def hook(i):
        def record(module, args):
            a = args[0].detach().to(torch.float64).reshape(-1, sums[i].numel())  # OPT passes [tokens, I]
            w = mask_now[0].to(a.device, torch.float64).reshape(-1, 1)
            sums[i] += (a.pow(2) * w).sum(0).to(sums[i].device)
        return record

    handles = [lin.register_forward_pre_hook(hook(i)) for i, lin in enumerate(outputs)]
    decoder = ctx.adapter.decoder
    try:
        for batch in ctx.calibration().batches():
            for r in range(0, batch["input_ids"].shape[0], ROWS_PER_FORWARD):
                ids = batch["input_ids"][r:r + ROWS_PER_FORWARD].to(device)
                mask = batch["attention_mask"][r:r + ROWS_PER_FORWARD].to(device)
                mask_now[:] = [mask]
                decoder(input_ids=ids, attention_mask=mask, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return [all_reduce_sum(t).cpu() for t in sums]  # under torchrun every rank scores all ranks' tokens


def _keep(lin: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> None:
    """In place: ``lin`` keeps weight rows ``rows`` (and those bias entries) and columns ``cols``."""
    w = lin.weight.detach()
    w = w[rows.to(w.device)] if rows is not None else w
    w = w[:, cols.to(w.device)] if cols is not None else w
    lin.weight = nn.Parameter(w.clone().contiguous(), requires_grad=lin.weight.requires_grad)
    if rows is not None and lin.bias is not None:
        lin.bias = nn.Parameter(lin.bias.detach()[rows.to(w.device)].clone(), requires_grad=lin.bias.requires_grad)
    lin.out_features, lin.in_features = lin.weight.shape


@torch.no_grad()
def prune_layer(adapter, layer: nn.Module, keep: torch.Tensor) -> None:
    """Keeps neurons ``keep`` (sorted indices) of ``layer``'s MLP: each input linear's rows (every
    part of a fused one) and the output linear's columns. The layer's function restricted to the
    kept neurons is unchanged: a removed neuron's output column is simply gone."""
    out = adapter.mlp_output(layer)
    width = out.in_features
    for lin in adapter.mlp_inputs(layer):
        parts = lin.out_features // width
        _keep(lin, rows=torch.cat([keep + p * width for p in range(parts)]))
    _keep(out, cols=keep)


@register_pass
class PruneMLP(Pass):
    """MLP neuron pruning. Invariant: every layer keeps the same number of neurons, the model's
    config names it, and the kept neurons' weights are the source's unchanged."""

    name = "prune_mlp"
    Config = PruneMLPConfig
    requires = ()
    provides = ("pruned",)
    excludes = QUANTIZED
    description = "remove the MLP neurons that write least into the residual stream (structured pruning)"

    def run(self, ctx) -> dict:
        cfg: PruneMLPConfig = self.config
        adapter = ctx.adapter
        ctx.model.eval()
        key = width_key(adapter.config)
        layers = list(adapter.layers())
        outputs = [adapter.mlp_output(layer) for layer in layers]
        width = outputs[0].in_features
        if any(o.in_features != width for o in outputs):
            raise ConfigError("prune: the layers' MLP widths differ; only a uniform width can be pruned")
        keep_n = kept_neurons(width, cfg.ratio, cfg.round_to)
        before = count_parameters(ctx.model)
        energy = neuron_energy(ctx, outputs)
        dropped_share = []
        for layer, out, e in zip(layers, outputs, energy):
            score = e * out.weight.detach().to(torch.float64).pow(2).sum(0).cpu()
            keep = torch.argsort(score, descending=True)[:keep_n].sort().values
            dropped_share.append(1.0 - float(score[keep].sum() / score.sum().clamp_min(1e-300)))
            prune_layer(adapter, layer, keep)
        setattr(adapter.config, key, keep_n)
        after = count_parameters(ctx.model)
        ctx.log.info("prune_mlp: %d of %d MLP neurons kept per layer; %.1fM -> %.1fM parameters",
                     keep_n, width, before / 1e6, after / 1e6)
        return {"width": width, "kept": keep_n, "parameters_before": before, "parameters_after": after,
                "calibration_tokens": ctx.calibration().num_tokens,
                "dropped_score_share": [round(s, 6) for s in dropped_share]}
