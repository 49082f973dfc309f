"""Anda fake-quant of activations on a live model, for the sensitivity sweep and the search.

Forward pre-hooks on every linear an Anda activation feeds replace its input by
``formats.anda.quantize(x, M)``; linears that read the same tensor (q/k/v, gate/up) quantize it
once. With the INT4 weights already fake-quantized in place, this computes exactly what the packed
``AndaLinear`` reference backend computes, so the search sees the deployed numerics.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from andactl.models.adapters import ANDA_TYPES
from andactl.models.anda_hooks import anda_activations, module_bits  # noqa: F401  (re-exported)


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
