"""Exact storage accounting of the Anda layout (pure functions of numbers).

A group of 64 elements costs 64 sign bits + 64*M plane bits + 5 exponent bits:
``group_bits(M) = 64 * (1 + M) + 5``. The in-memory layout stores the exponent in a byte; this
module counts the format's 5 bits (the paper's accounting, docs/FORMAT.md).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from andactl.errors import ConfigError
from andactl.formats.anda import EXPONENT_BITS, GROUP_SIZE, check_mantissa_bits

MODULE_TYPES = ("qkv", "o", "u", "d")


def group_bits(mantissa_bits: int) -> int:
    """Bits of one packed group of 64: 64 * (1 + M) + 5."""
    return GROUP_SIZE * (1 + check_mantissa_bits(mantissa_bits)) + EXPONENT_BITS


def num_groups(k: int) -> int:
    """G = ceil(k / 64) groups along a last dim of length k >= 0."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"K must be a non-negative integer, got {k!r}")
    return -(-k // GROUP_SIZE)


def packed_bits(shape_or_k: int | Sequence[int], mantissa_bits: int) -> int:
    """Exact bits of a packed tensor: rows * ceil(K/64) * group_bits(M).

    ``shape_or_k`` is either K (one row) or a full shape [..., K] (rows = product of leading dims).
    """
    if isinstance(shape_or_k, int) and not isinstance(shape_or_k, bool):
        rows, k = 1, shape_or_k
    else:
        shape = [int(s) for s in shape_or_k]
        if not shape or any(s < 0 for s in shape):
            raise ConfigError(f"shape must be a non-empty list of non-negative sizes, got {list(shape_or_k)}")
        rows, k = math.prod(shape[:-1]), shape[-1]
    return rows * num_groups(k) * group_bits(mantissa_bits)


def bits_per_element(mantissa_bits: int) -> float:
    """Average bits per element of a full group: (64 * (1 + M) + 5) / 64."""
    return group_bits(mantissa_bits) / GROUP_SIZE


def activation_memory(mantissa_bits: Mapping[str, int | Sequence[int]], k_values: Mapping[str, Sequence[int]],
                      tokens: int) -> dict[str, int]:
    """Activation bits per module type and in total for ``tokens`` tokens.

    ``mantissa_bits`` maps each type ("qkv", "o", "u", "d") to one M for all layers or to one M per
    layer; ``k_values`` maps the same types to the per-layer reduction dims K (a layer's A_qkv is
    counted once, shared by q, k and v; A_u once, shared by up and gate). Returns
    {type: tokens * sum_l ceil(K_l/64) * group_bits(M_l), ..., "total": sum}. ConfigError when the
    types differ or per-layer lists have different lengths.
    """
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ConfigError(f"tokens must be a non-negative integer, got {tokens!r}")
    if set(mantissa_bits) != set(k_values):
        raise ConfigError(f"mantissa bits given for {sorted(mantissa_bits)} but K values for {sorted(k_values)}")
    out: dict[str, int] = {}
    for kind, ks in k_values.items():
        ms = mantissa_bits[kind]
        per_layer = [ms] * len(ks) if isinstance(ms, int) else list(ms)
        if len(per_layer) != len(ks):
            raise ConfigError(f"{kind}: {len(per_layer)} mantissa-bit values for {len(ks)} layers")
        out[kind] = tokens * sum(packed_bits(int(k), m) for k, m in zip(ks, per_layer))
    out["total"] = sum(out.values())
    return out
