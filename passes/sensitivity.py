"""Pass ``sensitivity``: per Anda activation type, sweep M with the other types held high and
report loss = ppl/ppl_ref - 1 on the calibration data (ppl_ref: the model as it is, i.e. INT4
weights with unquantized activations when quantize_weights ran first)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from andactl.errors import ConfigError
from andactl.models.adapters import ANDA_TYPES
from andactl.passbase import Pass, PassConfig, register_pass
from andactl.passes.anda_fakequant import LossEvaluator


@dataclass
class SensitivityConfig(PassConfig):
    """``bits``: the M values swept; ``hold``: M of the other types; ``per_layer``: also sweep each
    layer's four types at ``per_layer_bits`` (one evaluation per point: layers x 4 x len)."""

    bits: list[int] = field(default_factory=lambda: list(range(3, 14)))
    hold: int = 13
    per_layer: bool = False
    per_layer_bits: list[int] = field(default_factory=lambda: [4, 6])
    rounding: Literal["truncate", "nearest"] = "truncate"
    plot: bool = True

    def validate(self) -> None:
        for m in [*self.bits, self.hold, *self.per_layer_bits]:
            if not 1 <= m <= 16:
                raise ConfigError(f"sensitivity bits must be in 1..16, got {m}")
        if not self.bits:
            raise ConfigError("sensitivity needs at least one value in 'bits'")


def plot_curves(curves: dict[str, dict[int, float]], ref_ppl: float, hold: int) -> bytes:
    """PNG of loss vs M per type (log y)."""
    from andactl.plotting import png_bytes, subplots

    fig, ax = subplots(figsize=(6, 4), dpi=120)
    for kind, curve in curves.items():
        ms = sorted(curve)
        ax.plot(ms, [max(curve[m], 1e-6) for m in ms], marker="o", label=f"A_{kind}")
    ax.set_yscale("log")
    ax.set_xlabel("mantissa bits M (others at %d)" % hold)
    ax.set_ylabel("ppl / ppl_ref - 1")
    ax.set_title(f"Anda sensitivity (ppl_ref {ref_ppl:.3f})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return png_bytes(fig)


@register_pass
class Sensitivity(Pass):
    """Sweep each activation type's mantissa bits; table in the report, PNG in the artifact."""

    name = "sensitivity"
    Config = SensitivityConfig
    provides = ("sensitivity",)

    def run(self, ctx) -> dict:
        cfg = self.config
        evaluate = LossEvaluator(ctx, cfg.rounding)
        curves: dict[str, dict[int, float]] = {k: {} for k in ANDA_TYPES}
        with ctx.progress("sensitivity", total=len(ANDA_TYPES) * len(cfg.bits)) as advance:
            for kind in ANDA_TYPES:
                for m in cfg.bits:
                    bits = {k: (m if k == kind else cfg.hold) for k in ANDA_TYPES}
                    curves[kind][m] = evaluate(bits)
                    advance()
        result = {"reference_ppl": evaluate.ref_ppl, "hold": cfg.hold, "curves": curves}
        if cfg.per_layer:
            result["per_layer"] = self._per_layer(ctx, evaluate)
        ctx.report["sensitivity"] = result
        if cfg.plot:
            ctx.attachments["sensitivity.png"] = plot_curves(curves, evaluate.ref_ppl, cfg.hold)
        return {"reference_ppl": round(evaluate.ref_ppl, 4), "evaluations": evaluate.evaluations}

    def _per_layer(self, ctx, evaluate) -> dict:
        cfg = self.config
        names = ctx.adapter.linear_names()
        layers = ctx.adapter.layers()
        out: dict[str, dict] = {}
        with ctx.progress("sensitivity per layer", total=len(layers) * 4 * len(cfg.per_layer_bits)) as advance:
            for i, layer in enumerate(layers):
                own = {id(m): kind for kind, mods in ctx.adapter.anda_linears(layer).items() for m in mods}
                by_name = {n: own[id(m)] for n, m in ctx.model.named_modules() if id(m) in own and n in names}
                for kind in ANDA_TYPES:
                    for m in cfg.per_layer_bits:
                        bits = {k: cfg.hold for k in ANDA_TYPES}
                        bits.update({n: m for n, k in by_name.items() if k == kind})
                        out.setdefault(str(i), {}).setdefault(kind, {})[m] = evaluate(bits)
                        advance()
        return out


def sensitivity_table(result: dict) -> list[list[str]]:
    """Rows [M, loss_qkv, loss_o, loss_u, loss_d] as strings (percent) for printing."""
    curves = result["curves"]
    ms = sorted({m for c in curves.values() for m in c}, key=int)
    return [[str(m)] + [f"{100 * curves[k][m]:.3f}%" if m in curves[k] else "" for k in ANDA_TYPES] for m in ms]
