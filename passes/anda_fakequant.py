"""Anda fake-quant of activations on a live model, for the sensitivity sweep and the search.

Forward pre-hooks on every linear an Anda activation feeds replace its input by
``formats.anda.quantize(x, M)``; linears that read the same tensor (q/k/v, gate/up) quantize it
once. With the INT4 weights already fake-quantized in place, this computes exactly what the packed
``AndaLinear`` reference backend computes, so the search sees the deployed numerics.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F

from andactl.formats import anda
from andactl.models.adapters import ANDA_TYPES


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


def calibration_loss(model, calibration, device) -> float:
    """Mean next-token cross-entropy over all non-padding calibration tokens (float64 sum)."""
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for batch in calibration.batches():
            ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum", ignore_index=-100)
            total += float(loss)
            count += int((target != -100).sum())
    from andactl.distributed import all_reduce_sum

    total, count = all_reduce_sum(torch.tensor([total, count], dtype=torch.float64, device=device)).tolist()
    return total / max(count, 1)


class LossEvaluator:
    """loss(bits) = ppl(bits) / ppl_ref - 1 on the calibration data, where ppl_ref is the model as
    it is (INT4 weights, unquantized activations). The reference is computed once and cached."""

    def __init__(self, ctx, rounding: str = "truncate"):
        self.ctx = ctx
        self.rounding = rounding
        self.calibration = ctx.calibration()
        self.ref_loss = calibration_loss(ctx.model, self.calibration, ctx.device)
        self.ref_ppl = math.exp(self.ref_loss)
        self.evaluations = 0

    def __call__(self, bits: dict) -> float:
        with anda_activations(self.ctx.model, self.ctx.adapter, bits, self.rounding):
            loss = calibration_loss(self.ctx.model, self.calibration, self.ctx.device)
        self.evaluations += 1
        return math.exp(loss - self.ref_loss) - 1.0


def tuple_bits(t) -> dict[str, int]:
    """(M_qkv, M_o, M_u, M_d) -> {"qkv": .., "o": .., "u": .., "d": ..}."""
    return dict(zip(ANDA_TYPES, (int(v) for v in t)))
