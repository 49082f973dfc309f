"""SliceGPT step 1: fold every norm's scale/shift into the linears that read it, untie the head,
make LayerNorm residual streams mean-free, and replace every norm by a weightless RMSN."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from andactl.formats.records import NormRecord
from andactl.models.modules import RMSN
from andactl.models.tied_head import centred_source, head_is_tied
from andactl.models.structure import replace_layer_norms, replace_norms, untie_head  # noqa: F401  (re-exported)
from andactl.passes.blockwise import map_cols_, map_rows_, matvec64
from andactl.passbase import Pass, PassConfig, register_pass
from andactl.models.slicegpt_layer import count_parameters


@dataclass
class FuseNormsConfig(PassConfig):
    """No options: fusion is exact and has nothing to tune."""


def _norm_affine(norm: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    weight = getattr(norm, "weight", None)
    bias = getattr(norm, "bias", None)
    return weight, bias


@torch.no_grad()
def fold_norm_into(norm: nn.Module, linears: list[nn.Linear]) -> list[nn.Linear]:
    """Folds ``y = n*gamma + beta`` into each reader: ``W <- W diag(gamma)``, ``b <- b + W beta``.

    Float64 arithmetic, cast back to each linear's dtype. Returns the linears that had no bias and
    were given one (only when the shift is non-zero)."""
    gamma, beta = _norm_affine(norm)
    shift = beta is not None and bool(beta.detach().abs().max() > 0)
    gained = []
    for lin in linears:
        if shift:
            if lin.bias is None:
                lin.bias = nn.Parameter(torch.zeros(lin.out_features, dtype=lin.weight.dtype, device=lin.weight.device))
                gained.append(lin)
            shifted = lin.bias.detach().to(torch.float64) + matvec64(lin.weight.detach(), beta.detach().to(torch.float64))
            lin.bias.data = shifted.to(lin.bias.dtype)
        if gamma is not None:
            g = gamma.detach().to(torch.float64)
            map_rows_(lin.weight.data, lambda w, rows: w * g)
    return gained


@torch.no_grad()
def center_rows(weight: torch.Tensor) -> None:
    """Embedding rows minus their mean over the hidden dim (float64, band by band), in place."""
    map_rows_(weight.data, lambda w, rows: w - w.mean(dim=1, keepdim=True))


@torch.no_grad()
def center_output(lin: nn.Linear) -> None:
    """A block-output linear whose every output (weight columns and bias) has zero mean over the
    output dim, so what it adds to the residual stream is mean-free."""
    map_cols_(lin.weight.data, lambda w: w - w.mean(dim=0, keepdim=True))
    if lin.bias is not None:
        b = lin.bias.detach().to(torch.float64)
        lin.bias.data = (b - b.mean()).to(lin.bias.dtype)


@register_pass
class FuseNorms(Pass):
    """Norm fusion. Invariant: the model's logits are unchanged (up to float rounding)."""

    name = "fuse_norms"
    Config = FuseNormsConfig
    provides = ("fused_norms",)
    streams = True
    description = "fold norm scales/shifts into linears, untie the head, norms -> weightless RMSNorm"

    def run(self, ctx) -> dict:
        model, adapter = ctx.model, ctx.adapter
        names = {id(m): n for n, m in model.named_modules()}
        before = count_parameters(model)
        ctx.original_parameters = before
        tied = head_is_tied(adapter.head(), adapter.embeddings()[0])
        untie_head(model, adapter)
        D, eps = adapter.hidden_size, adapter.norm_eps
        centred = centred_source(adapter)
        gained: list[nn.Linear] = []
        for i in range(ctx.layers.num_layers):
            with ctx.layers.onload(i) as layer:  # one layer materialised at a time when streaming
                if adapter.parallel_blocks:  # one norm feeds both branches: fold it once into all readers
                    gained += fold_norm_into(adapter.attn_norm(layer), adapter.attn_inputs(layer) + adapter.mlp_inputs(layer))
                else:
                    gained += fold_norm_into(adapter.attn_norm(layer), adapter.attn_inputs(layer))
                    gained += fold_norm_into(adapter.mlp_norm(layer), adapter.mlp_inputs(layer))
                if centred:
                    center_output(adapter.attn_output(layer))
                    center_output(adapter.mlp_output(layer))
                replace_layer_norms(adapter, layer, D, eps)
        if adapter.final_norm() is not None:
            gained += fold_norm_into(adapter.final_norm(), [adapter.head()])
            adapter.set_final_norm(RMSN(D, eps))
        if centred:
            for emb in adapter.embeddings():
                center_rows(emb.weight)
        biased = sorted(names[id(m)] for m in gained)
        ctx.structure.append({"pass": self.name, "hidden_size": D, "eps": eps, "biased": biased})
        ctx.records.norms = NormRecord(int(D), float(eps), tuple(biased), bool(tied))
        return {"hidden_size": D, "eps": eps, "centred": centred, "biased": biased, "tied_source": bool(tied),
                "parameters_before": before, "parameters_after": count_parameters(model)}
