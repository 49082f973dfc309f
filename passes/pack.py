"""Passes that make the Anda choice permanent in the model and the artifact.

``pack``: replace every INT4-quantized linear by an ``AndaLinear`` holding the packed INT4 weight,
its scales (and zero points) and the searched mantissa bits of its input activation type. The
artifact then stores ``<module>.weight_packed`` / ``weight_scale`` / ``weight_zero_point``; the
pass records a ``PackedModule`` per linear in ``ctx.records.packed``, which the writer turns into
the compressed-tensors-style ``quantization_config`` (formats/quant_config.py).

``anda_activations``: without INT4 weights (``--weights none``), keep the float linears and make the
activation fake-quant permanent (hooks re-installed when the artifact is loaded).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from andactl.errors import ConfigError
from andactl.passbase import Pass, PassConfig, register_pass
from andactl.formats.reader import install_activation_hooks
from andactl.formats.records import ActivationRecord, PackedModule
from andactl.passes.anda_fakequant import module_bits


def _set_module(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


@dataclass
class PackConfig(PassConfig):
    """``rounding`` of the activations at run time (the search's rounding by default)."""

    rounding: str = "truncate"

    def validate(self) -> None:
        if self.rounding not in ("truncate", "nearest"):
            raise ConfigError(f"rounding must be truncate or nearest, got {self.rounding!r}")


@register_pass
class Pack(Pass):
    """Replace INT4 linears by AndaLinear (packed INT4 weights + per-module mantissa bits)."""

    name = "pack"
    Config = PackConfig
    requires = ("int4_weights", "anda_bits")
    provides = ("packed",)
    streams = True

    def run(self, ctx) -> dict:
        from andactl.models.anda_linear import AndaLinear

        if not ctx.int4_weights:
            raise ConfigError("pack: no INT4 weights in this run (quantize_weights must run in the same recipe)")
        bits = module_bits(ctx.adapter, ctx.anda_bits or {})
        modules: dict[str, PackedModule] = {}
        layer_names = {id(m): n for n, m in ctx.model.named_modules()}
        by_layer: list[list[str]] = []
        for layer in ctx.adapter.layers():
            prefix = layer_names[id(layer)] + "."
            by_layer.append([n for n in ctx.int4_weights if n.startswith(prefix)])
        outside = set(ctx.int4_weights) - {n for names in by_layer for n in names}
        if outside:
            raise ConfigError(f"pack: INT4 weight '{sorted(outside)[0]}' is outside the decoder layers")
        for i, names in enumerate(by_layer):
            with ctx.layers.onload(i):  # one layer materialised at a time when streaming
                for name in names:
                    q = ctx.int4_weights.pop(name)
                    old = ctx.model.get_submodule(name)
                    w_packed, w_scales, w_zeros = q.packed()
                    new = AndaLinear.from_int4(w_packed, w_scales, w_zeros, old.bias.detach() if old.bias is not None else None,
                                               q.in_features, q.group_size, bits[name], rounding=self.config.rounding)
                    _set_module(ctx.model, name, new.to(old.weight.device))
                    modules[name] = PackedModule(name, q.group_size, w_zeros is None, bits[name], self.config.rounding)
        ctx.int4_weights = {}
        ctx.structure.append({"pass": "pack", "rounding": self.config.rounding, "modules": len(modules)})
        ctx.records.packed.update(modules)
        acts = "none" if all(v is None for v in (ctx.anda_bits or {}).values()) else "anda"
        ctx.artifact_meta["quantization"] = {
            "weights": "int4", "activations": acts, "bits": dict(ctx.anda_bits or {}), "modules": len(modules),
        }
        return {"modules": len(modules), "bits": dict(ctx.anda_bits or {})}


@register_pass
class AndaActivations(Pass):
    """Keep float weights; fake-quantize the Anda activations permanently (``--weights none``)."""

    name = "anda_activations"
    Config = PackConfig
    requires = ("anda_bits",)
    provides = ("anda_activations",)

    def run(self, ctx) -> dict:
        record = {"pass": "anda_activations", "rounding": self.config.rounding, "bits": dict(ctx.anda_bits)}
        ctx.records.activations = ActivationRecord(dict(ctx.anda_bits), self.config.rounding)
        install_activation_hooks(ctx.model, ctx.records)
        ctx.structure.append(record)
        ctx.artifact_meta["quantization"] = {
            "weights": "none", "activations": "anda", "bits": dict(ctx.anda_bits)}
        return {"bits": dict(ctx.anda_bits)}
