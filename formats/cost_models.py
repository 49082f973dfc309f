"""Cost models of the Anda search budgets (``--budget bops|energy|latency|memory``).

A candidate is a mantissa tuple ``(M_qkv, M_o, M_u, M_d)`` (hidden bit included, 1..16), one per
Anda activation type (inputs of q/k/v, o, up+gate, down). A ``ModelShape`` holds, per type and per
token, summed over layers: the MACs of the linears that read the activation (Σ K·N), its number of
64-element groups (Σ ceil(K/64), counted once per activation even when several linears read it)
and its number of elements (Σ K). Every model is monotone non-decreasing in each M.

Constants (``HardwareConstants``; the search only uses ratios, so absolute values are estimates):

- ``e_plane_mac_pj = 0.03``: energy of one bit-plane step of one MAC, i.e. a 1-bit activation ×
  4-bit weight partial product accumulated in an adder tree. Taken as one 8-bit integer add in
  45 nm, 0.03 pJ (M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC
  2014, Fig. 1.1.9); a bit-serial Anda PE spends M + 1 such steps per MAC (sign word + M planes).
- ``e_dram_pj_per_bit = 3.9``: DRAM access energy per bit (the figure DESIGN.md prescribes; it is
  the usual HBM2 number, ~3.9 pJ/bit, cf. O'Connor et al., "Fine-Grained DRAM", MICRO 2017).
- ``dram_accesses = 2``: each activation tensor is written once in Anda format by the producing
  op (the compressor) and read once by the matmul that consumes it.
- ``pe_lanes = 4096`` bit-plane MAC steps per cycle (e.g. 64 PEs × one 64-element group) and
  ``dram_bits_per_cycle = 1024`` (128 GB/s at 1 GHz): illustrative accelerator numbers for
  ``latency``, which is reported in cycles. Weights (INT4 + fp32 group scales) are read once
  per forward pass, so for few tokens ``latency`` is memory-bound and nearly flat in M.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from andactl.errors import ConfigError

from andactl.formats.anda import ACTIVATION_TYPES as TYPES
from andactl.formats.anda import EXPONENT_BITS
from andactl.formats.anda import GROUP_SIZE as GROUP
BUDGETS = ("bops", "energy", "latency", "memory")
WEIGHT_BITS = 4


@dataclass(frozen=True)
class HardwareConstants:
    """Constants of the energy and latency models (see the module docstring for sources)."""

    e_plane_mac_pj: float = 0.03
    e_dram_pj_per_bit: float = 3.9
    dram_accesses: int = 2
    pe_lanes: int = 4096
    dram_bits_per_cycle: float = 1024.0


DEFAULT_CONSTANTS = HardwareConstants()


@dataclass(frozen=True)
class ModelShape:
    """Per-token sizes per Anda type (dicts keyed by ``TYPES``), the weight storage in bits (read
    once per forward pass, used by ``latency`` only) and the number of tokens per forward pass."""

    macs: dict[str, int]
    groups: dict[str, int]
    elements: dict[str, int]
    weight_bits: int = 0
    tokens: int = 1
    per_layer_in_features: list[dict[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("macs", "groups", "elements"):
            d = getattr(self, name)
            if set(d) != set(TYPES):
                raise ConfigError(f"ModelShape.{name} must have exactly the keys {', '.join(TYPES)}, got {sorted(d)}")
            if any(v < 0 for v in d.values()):
                raise ConfigError(f"ModelShape.{name} values must be >= 0, got {d}")
        if self.tokens < 1:
            raise ConfigError(f"ModelShape.tokens must be >= 1, got {self.tokens}")

    @classmethod
    def from_in_out(cls, layers: Sequence[dict[str, tuple[int, Sequence[int]]]], tokens: int = 1,
                    weight_group_size: int = 128) -> "ModelShape":
        """Builds the shape from, per layer and type, ``(K, [N of each linear reading it])``."""
        macs = dict.fromkeys(TYPES, 0)
        groups = dict.fromkeys(TYPES, 0)
        elements = dict.fromkeys(TYPES, 0)
        weight_bits = 0
        per_layer = []
        for layer in layers:
            per_layer.append({t: int(layer[t][0]) for t in TYPES})
            for t in TYPES:
                k, outs = layer[t]
                macs[t] += sum(k * n for n in outs)
                groups[t] += -(-k // GROUP)
                elements[t] += k
                kw = -(-k // weight_group_size) * weight_group_size
                weight_bits += sum(n * kw * WEIGHT_BITS + n * (kw // weight_group_size) * 32 for n in outs)
        return cls(macs, groups, elements, weight_bits, tokens, per_layer)

    @classmethod
    def from_adapter(cls, adapter, tokens: int = 1, weight_group_size: int = 128) -> "ModelShape":
        """Reads in/out features of ``adapter.anda_linears(layer)`` of every layer (per-layer widths
        of sliced models included). Linears reading the same activation must share K."""
        layers = []
        for i, layer in enumerate(adapter.layers()):
            entry = {}
            for t, mods in adapter.anda_linears(layer).items():
                ks = {int(m.weight.shape[1]) for m in mods}
                if len(ks) != 1:
                    raise ConfigError(f"layer {i}: linears reading activation '{t}' disagree on in_features {sorted(ks)}")
                entry[t] = (ks.pop(), [int(m.weight.shape[0]) for m in mods])
            layers.append(entry)
        return cls.from_in_out(layers, tokens, weight_group_size)


def check_bits(bits: Sequence[int]) -> tuple[int, ...]:
    """The tuple as ints; ConfigError unless it has 4 entries each in 1..16."""
    t = tuple(bits)
    if len(t) != len(TYPES) or any(isinstance(b, bool) or int(b) != b or not 1 <= b <= 16 for b in t):
        raise ConfigError(f"mantissa bits must be 4 integers (M_qkv, M_o, M_u, M_d) in 1..16, got {list(t)}")
    return tuple(int(b) for b in t)


def activation_bits(bits: Sequence[int], shape: ModelShape) -> float:
    """Anda storage of all activations of one forward pass: Σ groups·(64·(1+M)+5) bits."""
    b = check_bits(bits)
    return shape.tokens * sum(shape.groups[t] * (GROUP * (1 + m) + EXPONENT_BITS) for t, m in zip(TYPES, b))


def bops(bits: Sequence[int], shape: ModelShape) -> float:
    """Bit operations: Σ MACs · 4 · M (INT4 weights × M-bit mantissas)."""
    b = check_bits(bits)
    return float(shape.tokens * sum(shape.macs[t] * WEIGHT_BITS * m for t, m in zip(TYPES, b)))


def energy(bits: Sequence[int], shape: ModelShape, c: HardwareConstants = DEFAULT_CONSTANTS) -> float:
    """pJ per forward pass: Σ MACs·(M+1)·e_plane_mac + activation DRAM traffic bits·e_dram."""
    b = check_bits(bits)
    pe = shape.tokens * sum(shape.macs[t] * (m + 1) for t, m in zip(TYPES, b)) * c.e_plane_mac_pj
    dram = activation_bits(b, shape) * c.dram_accesses * c.e_dram_pj_per_bit
    return float(pe + dram)


def latency(bits: Sequence[int], shape: ModelShape, c: HardwareConstants = DEFAULT_CONSTANTS) -> float:
    """Cycles per forward pass: max(compute Σ MACs·(M+1)/pe_lanes, DRAM traffic/bandwidth), where
    compute is groups·N·(M+1) group steps and traffic is activations (Anda) plus INT4 weights."""
    b = check_bits(bits)
    compute = shape.tokens * sum(shape.macs[t] * (m + 1) for t, m in zip(TYPES, b)) / c.pe_lanes
    memory_bits = activation_bits(b, shape) * c.dram_accesses + shape.weight_bits
    return float(max(compute, memory_bits / c.dram_bits_per_cycle))


def memory(bits: Sequence[int], shape: ModelShape) -> float:
    """Activation storage in bits: Σ groups·(64·(1+M)+5)."""
    return float(activation_bits(bits, shape))


_MODELS: dict[str, Callable[..., float]] = {"bops": bops, "energy": energy, "latency": latency, "memory": memory}


def _check_budget(budget: str) -> Callable[..., float]:
    if budget not in _MODELS:
        raise ConfigError(f"unknown budget '{budget}'; choose one of {', '.join(BUDGETS)}")
    return _MODELS[budget]


def cost(budget: str, bits: Sequence[int], shape: ModelShape) -> float:
    """Cost of the mantissa tuple under ``budget`` (one of BUDGETS); ConfigError otherwise."""
    return _check_budget(budget)(bits, shape)


def cost_fn(budget: str, shape: ModelShape) -> Callable[[tuple], float]:
    """``cost`` with the budget and shape bound: the ``cost`` argument of the search."""
    model = _check_budget(budget)
    return lambda bits: model(bits, shape)


def baseline_cost(budget: str, shape: ModelShape, bits: int = 16, c: HardwareConstants = DEFAULT_CONSTANTS) -> float:
    """Cost of dense ``bits``-bit activations (FP16 for W4A16): same datapath and constants with
    ``bits`` planes per MAC and ``bits`` bits per element, no sign plane or shared exponent."""
    _check_budget(budget)
    macs = shape.tokens * sum(shape.macs.values())
    elems_bits = shape.tokens * sum(shape.elements.values()) * bits
    if budget == "bops":
        return float(macs * WEIGHT_BITS * bits)
    if budget == "memory":
        return float(elems_bits)
    if budget == "energy":
        return float(macs * bits * c.e_plane_mac_pj + elems_bits * c.dram_accesses * c.e_dram_pj_per_bit)
    compute = macs * bits / c.pe_lanes
    return float(max(compute, (elems_bits * c.dram_accesses + shape.weight_bits) / c.dram_bits_per_cycle))


def reduction_vs(budget: str, bits: Sequence[int], shape: ModelShape, baseline_bits: int = 16) -> float:
    """``baseline_cost / cost``: how many times cheaper the tuple is than dense ``baseline_bits``
    activations (> 1 means a saving)."""
    return baseline_cost(budget, shape, baseline_bits) / cost(budget, bits, shape)
