"""SliceGPT step 2: rotate every residual-stream signal onto its principal components.

PCA is computed layer by layer on calibration signals propagated as the SLICED model would see
them: the calibration residual stream is kept in the original coordinates and projected onto the
kept principal subspace after each PCA (``x <- x Q_d Q_d^T``), which equals rotating, slicing and
rotating back. The weights are rotated with the full ``D x D`` bases, so the model stays exactly
equivalent to the fused one; the ``slice`` pass then cuts it to the recorded dims. With
``basis: fisher`` each kept subspace is chosen by the loss gradient's Gram matrix as well as the
signal's (``passes/pca.fisher_basis``, ``passes/residual_fisher.py``); the rest is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from andactl.distributed import all_reduce_sum, broadcast
from andactl.errors import ConfigError
from andactl.models.capture import capture_layer0_inputs, resident_device
from andactl.passbase import QUANTIZED, Pass, PassConfig, register_pass
from andactl.passes.blockwise import map_cols_, map_rows_
from andactl.passes.pca import GramAccumulator, fisher_basis, kept_variance, pca_basis, sliced_dim
from andactl.passes.residual_fisher import collect_residual_fisher
from andactl.formats.records import SlicingRecord
from andactl.models.slice_count import recorded_tied_source, slice_terms, sliced_parameters
from andactl.models.slicegpt_layer import install_layers


BASES = ("pca", "fisher")


@dataclass
class RotateConfig(PassConfig):
    """``ratio``: fraction of the hidden size to slice later (0 = rotation only); kept dim is
    ``floor((1-ratio)*D)`` rounded down to a multiple of ``round_to``. ``slice_head``: also slice the
    last layer's output and the head's input (SliceGPT's default keeps them at full width).
    ``basis``: ``pca`` (SliceGPT: keep the directions of most energy) or ``fisher`` (keep the ones
    whose removal the loss gradient says costs most: ``passes/pca.fisher_basis``; needs a backward
    pass over the whole model, so it does not stream)."""

    ratio: float = 0.0
    round_to: int = 8
    slice_head: bool = False
    basis: str = "pca"

    def validate(self) -> None:
        if self.basis not in BASES:
            raise ConfigError(f"unknown basis '{self.basis}'; choose one of: {', '.join(BASES)}")
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"slicing ratio must be in [0, 1), got {self.ratio}")
        if self.round_to < 1:
            raise ConfigError(f"round_to must be >= 1, got {self.round_to}")


def slicing_plan(hidden_size: int, num_layers: int, config: RotateConfig) -> dict:
    """Per-point kept dims: ``{"embedding": d, "layers": [{"attn_in", "mlp_in", "out"}], "head_in"}``."""
    d = sliced_dim(hidden_size, config.ratio, config.round_to)
    layers = []
    for i in range(num_layers):
        last = i == num_layers - 1
        out = d if (not last or config.slice_head) else hidden_size
        layers.append({"attn_in": d, "mlp_in": d, "out": out})
    return {"embedding": d, "layers": layers, "head_in": layers[-1]["out"] if layers else d}


def _project(x: torch.Tensor, Q: torch.Tensor, d: int) -> torch.Tensor:
    """``x Q[:, :d] Q[:, :d]^T``: the signal the sliced model keeps, in the original coordinates."""
    if d >= Q.shape[1]:
        return x
    Qd = Q[:, :d].to(x.dtype)
    return (x @ Qd) @ Qd.T


@torch.no_grad()
def _rotate_in(lin: nn.Module, Q: torch.Tensor) -> None:
    """Input side: ``W <- W Q`` (nn.Linear weight is [out, in]; nn.Embedding weight is [rows, D]),
    in float64 one band of rows at a time, in place."""
    map_rows_(lin.weight.data, lambda w, rows: w @ Q)


@torch.no_grad()
def _rotate_out(lin: nn.Linear, Q: torch.Tensor) -> None:
    """Output side: ``W <- Q^T W``, ``b <- Q^T b`` (float64, one band of columns at a time, in place)."""
    map_cols_(lin.weight.data, lambda w: Q.T @ w)
    if lin.bias is not None:
        lin.bias.data = (Q.T @ lin.bias.detach().to(torch.float64)).to(lin.bias.dtype)


class _Bases:
    """The basis of each residual point in ``rotate``'s order: PCA of the Gram matrix summed over
    all ranks, or with ``fisher`` (one gradient Gram per point) ``fisher_basis`` keeping ``d``
    columns; rank 0's basis on every rank. Records each point's estimate ratio against PCA."""

    def __init__(self, fisher: list[torch.Tensor] | None):
        self.fisher, self.point, self.ratios = fisher, 0, []

    def __call__(self, acc: GramAccumulator, device: torch.device, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        acc.all_reduce()
        if self.fisher is None:
            vals, Q = pca_basis(acc.H)
        else:
            vals, Q, ratio = fisher_basis(acc.H, self.fisher[self.point].to(acc.H.device), d)
            self.ratios.append(ratio)
        self.point += 1
        return broadcast(vals), broadcast(Q).to(device)


def _warn_if_slicing_grows(ctx, plan: dict) -> None:
    """One warning line, before the rotation's work, when ``plan`` leaves more parameters than the
    source had (SliceGPT's untied head and shortcut matrices outweigh the cut at small ratios)."""
    terms = slice_terms(ctx.adapter, recorded_tied_source(ctx.records))
    source = ctx.original_parameters
    if terms is None or not source or plan["embedding"] == ctx.adapter.hidden_size:
        return
    after = sliced_parameters(terms, plan)
    if after > source:
        why = "adds shortcut matrices" if terms.one_table else "unties the head and adds shortcut matrices"
        ctx.log.warning("slicing to width %d leaves %.1fM parameters, %.2fx the source's %.1fM (SliceGPT %s): the "
                        "sliced model is larger than the source",
                        plan["embedding"], after / 1e6, after / source, source / 1e6, why)


@register_pass
class Rotate(Pass):
    """PCA rotation. Invariant: logits equal the fused model's (rotation only, nothing sliced)."""

    name = "rotate"
    Config = RotateConfig
    requires = ("fused_norms",)
    provides = ("rotated",)
    excludes = ("rotated", *QUANTIZED)
    description = "rotate residual streams onto calibration principal components (SliceGPT)"

    @property
    def streams(self) -> bool:
        """Layer by layer, except with ``basis: fisher`` (its backward pass needs the whole model).
        Read on the class (the list of passes that stream), it is this property: true."""
        return self.config.basis != "fisher"

    @torch.no_grad()
    def run(self, ctx) -> dict:
        model, adapter, cfg = ctx.model, ctx.adapter, self.config
        model.eval()
        D = adapter.hidden_size
        plan = slicing_plan(D, len(adapter.layers()), cfg)  # ConfigError before anything changes
        _warn_if_slicing_grows(ctx, plan)
        fisher = None
        if cfg.basis == "fisher":
            calibration = ctx.calibration()
            with ctx.progress("fisher: gradients", total=calibration.num_samples) as advance:
                fisher = collect_residual_fisher(model, adapter, calibration, ctx.seed, advance)
            for F in fisher:
                all_reduce_sum(F)
        bases = _Bases(fisher)
        layers = install_layers(adapter)
        device = resident_device(model)
        states = capture_layer0_inputs(model, layers[0], ctx.calibration())
        kept: list[dict] = []

        keep = ctx.activation_buffers().keep  # RAM, or disk-backed when spilled (same values)
        acc = GramAccumulator(D, device)
        for k, st in enumerate(states):
            st.x = keep(st.x, k)
            acc.add(st.x, st.mask)
        vals, Q_in = bases(acc, device, plan["embedding"])
        tokens = acc.tokens  # over every rank's share
        kept.append({"embedding": kept_variance(vals, plan["embedding"])})
        for emb in adapter.embeddings():
            _rotate_in(emb, Q_in)
        for k, st in enumerate(states):
            st.x = keep(_project(st.x, Q_in, plan["embedding"]), k)

        with ctx.progress("rotate", total=len(layers)) as advance:
            for i in range(len(layers)):
                with ctx.layers.onload(i) as layer:  # one layer materialised at a time when streaming
                    dims = plan["layers"][i]
                    if adapter.parallel_blocks:
                        Q_in = self._parallel_layer(adapter, layer, states, Q_in, dims, kept, device, keep, bases)
                        advance()
                        continue
                    acc = GramAccumulator(D, device)
                    for k, st in enumerate(states):  # residual entering the second norm, upstream already sliced
                        h = adapter.run_attention(layer, adapter.attn_norm(layer)(st.x), st.kwargs)
                        st.x = keep(st.x + h, k)
                        acc.add(st.x, st.mask)
                    vals_mid, Q_mid = bases(acc, device, dims["mlp_in"])
                    acc = GramAccumulator(D, device)
                    for k, st in enumerate(states):  # layer output, with the attention output sliced
                        x = _project(st.x, Q_mid, dims["mlp_in"])
                        st.x = keep(x + adapter.run_mlp(layer, adapter.mlp_norm(layer)(x)), k)
                        acc.add(st.x, st.mask)
                    vals_out, Q_out = bases(acc, device, dims["out"])
                    for k, st in enumerate(states):
                        st.x = keep(_project(st.x, Q_out, dims["out"]), k)
                    self._rotate_layer(adapter, layer, Q_in, Q_mid, Q_out)
                    kept.append({"mlp_in": kept_variance(vals_mid, dims["mlp_in"]), "out": kept_variance(vals_out, dims["out"])})
                    Q_in = Q_out
                    advance()
        _rotate_in(adapter.head(), Q_in)
        del states

        ctx.structure.append({"pass": self.name, "hidden_size": D, "num_layers": len(layers), "plan": plan})
        ctx.records.slicing = SlicingRecord.full(D, len(layers))  # rotated: D x D shortcuts until sliced
        ctx.report["slicing"] = {
            **ctx.report.get("slicing", {}),
            "ratio": cfg.ratio, "round_to": cfg.round_to, "slice_head": cfg.slice_head, "basis": cfg.basis,
            "hidden_size": D, "dim": plan["embedding"], "plan": plan,
        }
        result = {"hidden_size": D, "dim": plan["embedding"], "calibration_tokens": tokens, "kept_variance": kept}
        if fisher is not None:  # per point: the loss estimate of its cut against PCA's (<= 1)
            result["fisher_estimate_vs_pca"] = [round(r, 4) for r in bases.ratios]
        return result

    @staticmethod
    def _rotate_layer(adapter, layer, Q_in: torch.Tensor, Q_mid: torch.Tensor, Q_out: torch.Tensor) -> None:
        """Rotates one block's weights and sets its shortcuts ``Q_in^T Q_mid``, ``Q_mid^T Q_out``."""
        for lin in adapter.attn_inputs(layer):
            _rotate_in(lin, Q_in)
        _rotate_out(adapter.attn_output(layer), Q_mid)
        for lin in adapter.mlp_inputs(layer):
            _rotate_in(lin, Q_mid)
        _rotate_out(adapter.mlp_output(layer), Q_out)
        dtype = adapter.attn_output(layer).weight.dtype
        layer.attn_shortcut = (Q_in.T @ Q_mid).to(dtype)
        layer.mlp_shortcut = (Q_mid.T @ Q_out).to(dtype)

    @staticmethod
    def _parallel_layer(adapter, layer, states, Q_in: torch.Tensor, dims: dict, kept: list, device, keep,
                        bases) -> torch.Tensor:
        """One parallel block (one norm, one residual add): PCA of the block output, weights
        rotated, shortcut ``Q_in^T Q_out`` set; returns ``Q_out``. ``states`` advance to the
        block output as the sliced model sees it."""
        acc = GramAccumulator(adapter.hidden_size, device)
        for k, st in enumerate(states):
            n = adapter.attn_norm(layer)(st.x)
            st.x = keep(st.x + adapter.run_attention(layer, n, st.kwargs) + adapter.run_mlp(layer, n), k)
            acc.add(st.x, st.mask)
        vals_out, Q_out = bases(acc, device, dims["out"])
        for k, st in enumerate(states):
            st.x = keep(_project(st.x, Q_out, dims["out"]), k)
        for lin in adapter.attn_inputs(layer) + adapter.mlp_inputs(layer):
            _rotate_in(lin, Q_in)
        _rotate_out(adapter.attn_output(layer), Q_out)
        _rotate_out(adapter.mlp_output(layer), Q_out)
        layer.shortcut = (Q_in.T @ Q_out).to(adapter.attn_output(layer).weight.dtype)
        kept.append({"out": kept_variance(vals_out, dims["out"])})
        return Q_out
