"""Passes that make the Anda choice permanent in the model and the artifact.

``pack``: replace every INT4-quantized linear by an ``AndaLinear`` holding the packed INT4 weight,
its scales (and zero points) and the searched mantissa bits of its input activation type. The
artifact then stores ``<module>.weight_packed`` / ``weight_scale`` / ``weight_zero_point`` and a
compressed-tensors-style ``quantization_config`` (our own ``quant_method``, so foreign loaders
refuse it instead of misreading it).

``anda_activations``: without INT4 weights (``--weights none``), keep the float linears and make the
activation fake-quant permanent (hooks re-installed when the artifact is loaded).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from andactl.errors import ConfigError
from andactl.passbase import Pass, PassConfig, register_pass
from andactl.passes.anda_fakequant import anda_activations, module_bits

FORMAT_NAME = "anda-bitplane-int4"
FORMAT_VERSION = 1


def _set_module(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def quantization_config(modules: dict[str, dict], rounding: str) -> dict:
    """compressed-tensors-style config: one config group per (weight scheme, M)."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for name, spec in modules.items():
        groups[(spec["group_size"], spec["asymmetric"], spec["mantissa_bits"])].append(name)
    config_groups = {}
    for i, ((gs, asym, m), targets) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        acts = None if m is None else {"type": "anda", "group_size": 64, "mantissa_bits": m, "exponent_bits": 5,
                                       "rounding": rounding, "layout": "bitplane"}
        config_groups[f"group_{i}"] = {
            "targets": sorted(targets),
            "weights": {"num_bits": 4, "type": "int", "symmetric": not asym, "strategy": "group", "group_size": gs},
            "input_activations": acts,
        }
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config_groups": config_groups,
            "ignore": ["lm_head", "embeddings", "shortcuts"]}


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

    def run(self, ctx) -> dict:
        from andactl.kernels.anda_linear import AndaLinear

        if not ctx.int4_weights:
            raise ConfigError("pack: no INT4 weights in this run (quantize_weights must run in the same recipe)")
        bits = module_bits(ctx.adapter, ctx.anda_bits or {})
        modules = {}
        for name, q in ctx.int4_weights.items():
            old = ctx.model.get_submodule(name)
            w_packed, w_scales, w_zeros = q.packed()
            new = AndaLinear.from_int4(w_packed, w_scales, w_zeros, old.bias.detach() if old.bias is not None else None,
                                       q.in_features, q.group_size, bits[name], rounding=self.config.rounding)
            _set_module(ctx.model, name, new.to(old.weight.device))
            modules[name] = {"in_features": q.in_features, "out_features": q.out_features, "group_size": q.group_size,
                             "asymmetric": w_zeros is not None, "bias": old.bias is not None,
                             "bias_dtype": str(old.weight.dtype).replace("torch.", ""), "mantissa_bits": bits[name]}
        ctx.int4_weights = {}
        ctx.structure.append({"pass": "pack", "rounding": self.config.rounding, "modules": modules})
        ctx.report["quantization_config"] = quantization_config(modules, self.config.rounding)
        acts = "none" if all(v is None for v in (ctx.anda_bits or {}).values()) else "anda"
        ctx.report.setdefault("artifact_meta", {})["quantization"] = {
            "weights": "int4", "activations": acts, "bits": dict(ctx.anda_bits or {}), "modules": len(modules),
        }
        return {"modules": len(modules), "bits": dict(ctx.anda_bits or {})}

    @classmethod
    def rebuild(cls, model, adapter, record: dict) -> None:
        from andactl.kernels.anda_linear import AndaLinear

        for name, spec in record["modules"].items():
            mod = AndaLinear.empty(spec["in_features"], spec["out_features"], spec["group_size"], spec["mantissa_bits"],
                                   rounding=record.get("rounding", "truncate"), asymmetric=spec["asymmetric"],
                                   bias=spec["bias"], dtype=getattr(torch, spec.get("bias_dtype", "float32")))
            _set_module(model, name, mod)


@register_pass
class AndaActivations(Pass):
    """Keep float weights; fake-quantize the Anda activations permanently (``--weights none``)."""

    name = "anda_activations"
    Config = PackConfig
    requires = ("anda_bits",)
    provides = ("anda_activations",)

    def run(self, ctx) -> dict:
        record = {"pass": "anda_activations", "rounding": self.config.rounding, "bits": dict(ctx.anda_bits)}
        self.rebuild(ctx.model, ctx.adapter, record)
        ctx.structure.append(record)
        ctx.report.setdefault("artifact_meta", {})["quantization"] = {
            "weights": "none", "activations": "anda", "bits": dict(ctx.anda_bits)}
        return {"bits": dict(ctx.anda_bits)}

    @classmethod
    def rebuild(cls, model, adapter, record: dict) -> None:
        hooks = anda_activations(model, adapter, record["bits"], record.get("rounding", "truncate"))
        hooks.__enter__()  # permanent for the model's lifetime
        model._andactl_activation_hooks = hooks
