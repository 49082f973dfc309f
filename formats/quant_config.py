"""``quantization_config``: the single description of an artifact's packed modules.

compressed-tensors style (config groups with ``targets``, ``weights``, ``input_activations``) under
our own ``quant_method: "andactl"``. Every artifact carries one (with no groups when nothing is
packed). ``targets`` are qualified module names; weights are INT4, group-wise, symmetric (zero
point 8) or asymmetric; input activations are Anda (group 64, 5-bit shared exponent, M mantissa
bits) or ``null`` (W4A16).
"""
from __future__ import annotations

from collections import defaultdict

from andactl.errors import ArtifactError
from andactl.formats.anda import EXPONENT_BITS, GROUP_SIZE
from andactl.formats.records import FORMAT_VERSION, PackedModule

QUANT_METHOD = "andactl"
FORMAT_NAME = "anda-bitplane-int4"
IGNORE = ["lm_head", "embeddings", "shortcuts"]


def build(packed: dict[str, PackedModule]) -> dict:
    """The quantization_config of ``packed``: one config group per (weight scheme, M, rounding)."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for name, p in packed.items():
        groups[(p.group_size, p.symmetric, p.mantissa_bits, p.rounding)].append(name)
    config_groups = {}
    for i, ((gs, sym, m, rounding), targets) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        acts = None if m is None else {"type": "anda", "group_size": GROUP_SIZE, "mantissa_bits": m,
                                       "exponent_bits": EXPONENT_BITS, "rounding": rounding, "layout": "bitplane"}
        config_groups[f"group_{i}"] = {
            "targets": sorted(targets),
            "weights": {"num_bits": 4, "type": "int", "symmetric": sym, "strategy": "group", "group_size": gs},
            "input_activations": acts,
        }
    return {"quant_method": QUANT_METHOD, "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "config_groups": config_groups, "ignore": list(IGNORE)}


def _expect(value, want, what: str) -> None:
    if value != want:
        raise ArtifactError(f"quantization_config: {what} must be {want!r}, got {value!r}")


def parse(cfg) -> dict[str, PackedModule]:
    """Packed modules (name -> PackedModule) described by ``cfg``; ArtifactError naming the bad
    field for anything this andactl cannot execute exactly."""
    if not isinstance(cfg, dict):
        raise ArtifactError("config.json has no quantization_config mapping: not an andactl artifact")
    _expect(cfg.get("quant_method"), QUANT_METHOD, "quant_method")
    _expect(cfg.get("format"), FORMAT_NAME, "format")
    groups = cfg.get("config_groups")
    if not isinstance(groups, dict):
        raise ArtifactError("quantization_config: config_groups must be a mapping")
    out: dict[str, PackedModule] = {}
    for gname, g in groups.items():
        if not isinstance(g, dict) or not isinstance(g.get("targets"), list):
            raise ArtifactError(f"quantization_config: {gname} must have a 'targets' list")
        w = g.get("weights")
        if not isinstance(w, dict):
            raise ArtifactError(f"quantization_config: {gname}.weights must be a mapping")
        _expect(w.get("num_bits"), 4, f"{gname}.weights.num_bits")
        _expect(w.get("type"), "int", f"{gname}.weights.type")
        _expect(w.get("strategy"), "group", f"{gname}.weights.strategy")
        acts = g.get("input_activations")
        m, rounding = None, "truncate"
        if acts is not None:
            if not isinstance(acts, dict):
                raise ArtifactError(f"quantization_config: {gname}.input_activations must be a mapping or null")
            _expect(acts.get("type"), "anda", f"{gname}.input_activations.type")
            _expect(acts.get("group_size"), GROUP_SIZE, f"{gname}.input_activations.group_size")
            _expect(acts.get("exponent_bits"), EXPONENT_BITS, f"{gname}.input_activations.exponent_bits")
            m, rounding = acts.get("mantissa_bits"), acts.get("rounding", "truncate")
            if m is None:
                raise ArtifactError(f"quantization_config: {gname}.input_activations.mantissa_bits is missing")
        for target in g["targets"]:
            if target in out:
                raise ArtifactError(f"quantization_config: module {target!r} is the target of two config groups")
            out[target] = PackedModule(target, w.get("group_size"), w.get("symmetric"), m, rounding)
    return out
