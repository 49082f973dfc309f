"""Cost models of the Anda search: exact formulas, shapes from adapters, monotonicity."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from andactl.errors import ConfigError
from andactl.formats import cost_models as cm
from andactl.formats.cost_models import BUDGETS, DEFAULT_CONSTANTS as C, ModelShape, cost, cost_fn, reduction_vs
from andactl.models.adapters import get_adapter
from tiny_models import tiny_model, tiny_sliced

# tiny llama: hidden 64, 4 heads of 16, 2 kv heads -> q 64->64, k/v 64->32; MLP 64->96 (x2), 96->64
LLAMA_MACS = {"qkv": 2 * 64 * (64 + 32 + 32), "o": 2 * 64 * 64, "u": 2 * 64 * 96 * 2, "d": 2 * 96 * 64}
LLAMA_GROUPS = {"qkv": 2, "o": 2, "u": 2, "d": 4}
LLAMA_ELEMS = {"qkv": 128, "o": 128, "u": 128, "d": 192}


def _shape(tokens: int = 1) -> ModelShape:
    return ModelShape(dict(LLAMA_MACS), dict(LLAMA_GROUPS), dict(LLAMA_ELEMS), weight_bits=10_000, tokens=tokens)


def test_from_adapter_counts_macs_groups_elements_of_tiny_llama():
    model, _ = tiny_model("llama")
    shape = ModelShape.from_adapter(get_adapter(model), tokens=7)
    assert shape.macs == LLAMA_MACS and shape.groups == LLAMA_GROUPS and shape.elements == LLAMA_ELEMS
    assert shape.tokens == 7 and shape.per_layer_in_features == [{"qkv": 64, "o": 64, "u": 64, "d": 96}] * 2
    # INT4 weights, group 128: every K pads to 128; 4 bits per weight + one fp32 scale per group
    outs = 2 * (64 + 32 + 32 + 64 + 96 + 96 + 64)
    assert shape.weight_bits == outs * (128 * 4 + 32)


def test_from_adapter_reads_per_layer_widths_of_a_sliced_model():
    ctx = tiny_sliced("llama", 0.25)
    shape = ModelShape.from_adapter(ctx.adapter)
    assert shape.per_layer_in_features == [{"qkv": 48, "o": 64, "u": 48, "d": 96}] * 2
    assert shape.macs["qkv"] == 2 * 48 * 128 and shape.macs["u"] == 2 * 48 * 192
    # outputs sliced too, except the last layer's output (the head is not sliced by default)
    assert shape.macs["o"] == 2 * 64 * 48 and shape.macs["d"] == 96 * 48 + 96 * 64
    assert shape.groups == {"qkv": 2, "o": 2, "u": 2, "d": 4} and shape.elements["qkv"] == 96


def test_bops_and_memory_exact():
    s = _shape(tokens=3)
    bits = (5, 7, 4, 9)
    expected_bops = 3 * sum(LLAMA_MACS[t] * 4 * m for t, m in zip(cm.TYPES, bits))
    assert cost("bops", bits, s) == expected_bops
    expected_mem = 3 * sum(LLAMA_GROUPS[t] * (64 * (1 + m) + 5) for t, m in zip(cm.TYPES, bits))
    assert cost("memory", bits, s) == expected_mem == cm.activation_bits(bits, s)


def test_energy_exact():
    s = _shape()
    bits = (6, 6, 8, 10)
    pe = sum(LLAMA_MACS[t] * (m + 1) for t, m in zip(cm.TYPES, bits)) * 0.03
    dram = cm.activation_bits(bits, s) * 2 * 3.9
    assert cost("energy", bits, s) == pytest.approx(pe + dram, rel=1e-12)
    assert C.e_dram_pj_per_bit == 3.9 and C.e_plane_mac_pj == 0.03


def test_latency_is_memory_bound_for_one_token_and_compute_bound_for_many():
    big = ModelShape({t: 10**6 for t in cm.TYPES}, {t: 16 for t in cm.TYPES}, {t: 1024 for t in cm.TYPES},
                     weight_bits=4 * 4 * 10**6, tokens=1)
    one = cost("latency", (4, 4, 4, 4), big)
    assert one == pytest.approx((cm.activation_bits((4,) * 4, big) * 2 + big.weight_bits) / 1024)
    many = ModelShape(big.macs, big.groups, big.elements, big.weight_bits, tokens=4096)
    assert cost("latency", (7, 7, 7, 7), many) / cost("latency", (3, 3, 3, 3), many) == pytest.approx(8 / 4)


def test_reduction_vs_fp16_baseline():
    s = _shape()
    for m in (2, 4, 8, 16):
        assert reduction_vs("bops", (m,) * 4, s) == pytest.approx(16 / m, rel=1e-12)
    # memory: 16 bits per element vs (64 (1 + M) + 5) / 64 bits per element
    m = 4
    expected = 16 * sum(LLAMA_ELEMS.values()) / sum(g * (64 * (1 + m) + 5) for g in LLAMA_GROUPS.values())
    assert reduction_vs("memory", (m,) * 4, s) == pytest.approx(expected, rel=1e-12)
    for budget in BUDGETS:
        assert reduction_vs(budget, (4, 4, 4, 4), s) > reduction_vs(budget, (12, 12, 12, 12), s) > 0


@pytest.mark.parametrize("budget", BUDGETS)
def test_every_model_is_monotone_in_each_coordinate_exhaustively(budget):
    s = _shape(tokens=64)
    for t in itertools.product(range(1, 17, 3), repeat=4):
        c = cost(budget, t, s)
        for i in range(4):
            if t[i] < 16:
                up = t[:i] + (t[i] + 1,) + t[i + 1:]
                assert cost(budget, up, s) >= c
    assert cost(budget, (16,) * 4, s) > cost(budget, (1,) * 4, s)


@settings(max_examples=60, deadline=None)
@given(
    budget=st.sampled_from(BUDGETS), tokens=st.integers(1, 5000),
    ks=st.lists(st.integers(1, 5000), min_size=4, max_size=4),
    ns=st.lists(st.integers(1, 20000), min_size=4, max_size=4),
    bits=st.lists(st.integers(1, 15), min_size=4, max_size=4), i=st.integers(0, 3),
)
def test_monotone_property(budget, tokens, ks, ns, bits, i):
    layer = {t: (k, [n]) for t, k, n in zip(cm.TYPES, ks, ns)}
    s = ModelShape.from_in_out([layer, layer], tokens=tokens)
    t = tuple(bits)
    up = t[:i] + (t[i] + 1,) + t[i + 1:]
    assert cost(budget, up, s) >= cost(budget, t, s) > 0


def test_cost_fn_binds_budget_and_shape():
    s = _shape()
    f = cost_fn("energy", s)
    assert f((3, 4, 5, 6)) == cost("energy", (3, 4, 5, 6), s)


@pytest.mark.parametrize("bits", [(0, 4, 4, 4), (4, 4, 4, 17), (4, 4, 4), (4.5, 4, 4, 4), (True, 4, 4, 4)])
def test_bad_bits_raise(bits):
    with pytest.raises(ConfigError, match="mantissa bits"):
        cost("bops", bits, _shape())


def test_bad_budget_and_shape_raise():
    with pytest.raises(ConfigError, match="unknown budget 'flops'"):
        cost("flops", (4, 4, 4, 4), _shape())
    with pytest.raises(ConfigError):
        ModelShape({"qkv": 1}, dict(LLAMA_GROUPS), dict(LLAMA_ELEMS))
    with pytest.raises(ConfigError):
        ModelShape(dict(LLAMA_MACS), dict(LLAMA_GROUPS), dict(LLAMA_ELEMS), tokens=0)
