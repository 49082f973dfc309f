"""Anda activation fake-quant hooks on a live model: a runtime module (the search uses them, and the
artifact reader re-installs them permanently for ``--weights none`` artifacts).

Forward pre-hooks on every linear an Anda activation feeds replace its input by
``formats.anda.quantize(x, M)``; linears that read the same tensor (q/k/v, gate/up) quantize it once.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from andactl.formats import anda


def module_bits(adapter, bits: dict) -> dict[str, int | None]:
    """Qualified linear name -> M, from ``bits`` keyed by Anda type ("qkv", "o", "u", "d") and
    optionally overridden per module name (keys containing a dot)."""
    out = {}
    for name, kind in adapter.linear_names().items():
        out[name] = bits.get(name, bits.get(kind))
    return out


@contextlib.contextmanager
def anda_activations(model, adapter, bits: dict, rounding: str = "truncate") -> Iterator[None]:
    """Within the block, inputs of the Anda linears are fake-quantized at ``bits`` (see
    ``module_bits``; M None leaves a module's input unquantized). Hooks are removed on exit."""
    per_module = module_bits(adapter, bits)
    modules = dict(model.named_modules())
    cache: dict[tuple[int, int], torch.Tensor] = {}
    handles = []

    def make_hook(m_bits: int):
        def hook(module, args):
            x = args[0]
            key = (id(x), m_bits)
            hit = cache.get(key)
            if hit is None or hit[0] is not x:
                cache.clear()
                hit = (x, anda.quantize(x, m_bits, anda.GROUP_SIZE, rounding))
                cache[key] = hit
            return (hit[1],) + tuple(args[1:])

        return hook

    try:
        for name, m_bits in per_module.items():
            if m_bits is not None:
                handles.append(modules[name].register_forward_pre_hook(make_hook(int(m_bits))))
        yield
    finally:
        for h in handles:
            h.remove()
        cache.clear()
