"""Anda fake-quant of activations on a live model, for the sensitivity sweep and the search.

Forward pre-hooks on every linear an Anda activation feeds replace its input by
``formats.anda.quantize(x, M)``; linears that read the same tensor (q/k/v, gate/up) quantize it
once. With the INT4 weights already fake-quantized in place, this computes exactly what the packed
``AndaLinear`` reference backend computes, so the search sees the deployed numerics.
"""
from __future__ import annotations

import math

import torch

from andactl.models.adapters import ANDA_TYPES
from andactl.models.anda_hooks import anda_activations, module_bits  # noqa: F401  (re-exported)
from andactl.passes.search_losses import SEARCH_LOSSES


KL_TOKEN_CHUNK = 256  # positions whose logits the KL search loss builds at once (256 x 49152 x 4 B = 48 MiB)


def next_token_logits(model, calibration, device):
    """Yields (input ids, attention mask, logits [B, T-1, V] in the model's dtype predicting tokens
    1..T-1) per calibration batch, in eval mode under inference_mode. The logits are a view of the
    model's output: one [B, T, V] tensor per batch is all they hold (what ``--dry-run`` counts)."""
    model.eval()
    with torch.inference_mode():
        for batch in calibration.batches():
            ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            yield ids, mask, model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]


def summed_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Sum of the next-token cross-entropy of ``logits`` [B, T, V] against ``target`` [B, T] (-100 =
    no target), one sequence at a time through ``perplexity.position_losses``, summed in float64:
    its float32 copies and log-softmax stay ``LOSS_POSITIONS x V`` however large the batch (the
    whole batch's reshaped copy and log-softmax added 0.4 GB to `andactl quantize smollm2-135m`'s
    peak RSS, whose dry run counts the batch's logits alone)."""
    from andactl.evaluation.perplexity import position_losses

    return sum(float(position_losses(logits[row], target[row]).double().sum()) for row in range(logits.shape[0]))


def calibration_loss(model, calibration, device) -> float:
    """Mean next-token cross-entropy over all non-padding calibration tokens (float64 sum)."""
    total, count = 0.0, 0
    for ids, mask, logits in next_token_logits(model, calibration, device):
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        total += summed_cross_entropy(logits, target)
        count += int((target != -100).sum())
        del logits  # else this batch's logits stay alive beside the next batch's while the model computes them
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


def predicting_hidden(model, calibration, device):
    """Yields, per calibration batch, the final hidden states [n, D] (after the final norm, before
    the LM head) of the ``n`` positions that count: the position and its successor are both real
    tokens. In eval mode under inference_mode; ``model.base_model`` is the decoder body whose output
    the causal-LM head reads."""
    body = model.base_model
    model.eval()
    with torch.inference_mode():
        for batch in calibration.batches():
            ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            h = body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            yield h[:, :-1][(mask[:, 1:] != 0) & (mask[:, :-1] != 0)]


class KLEvaluator:
    """loss(bits) = exp(mean KL(p_ref || p_bits)) - 1 over the calibration tokens, where p_ref is the
    next-token distribution of the model as it is (INT4 weights, unquantized activations). Unlike
    the ppl ratio, every token's divergence counts positively: errors cannot cancel between tokens,
    which is what made the ppl-ratio tolerance fail to hold on other text. Deterministic; 0.0 for
    the reference.

    Memory: the reference keeps only the final hidden states of the calibration positions
    (``tokens · D`` in the run dtype: 9 MB for SmolLM2 at 8×512, where float32 log-probabilities
    took ``4 · tokens · vocab`` = 0.8 GB and grew with the calibration set); both distributions are
    rebuilt through the (frozen, unquantized) LM head in chunks of ``KL_TOKEN_CHUNK`` positions by
    ``passes.recover_loss.head_loss``, the same chunked KL the recovery distillation uses."""

    def __init__(self, ctx, rounding: str = "truncate"):
        self.ctx = ctx
        self.rounding = rounding
        self.calibration = ctx.calibration()
        self.reference = list(predicting_hidden(ctx.model, self.calibration, ctx.device))
        self.ref_ppl = math.exp(calibration_loss(ctx.model, self.calibration, ctx.device))
        self.evaluations = 0

    def __call__(self, bits: dict) -> float:
        from andactl.distributed import all_reduce_sum
        from andactl.passes.recover_loss import head_loss

        head = self.ctx.adapter.head()
        total, count = 0.0, 0
        with anda_activations(self.ctx.model, self.ctx.adapter, bits, self.rounding):
            for ref, got in zip(self.reference, predicting_hidden(self.ctx.model, self.calibration, self.ctx.device)):
                if ref.shape[0] == 0:
                    continue
                stats: dict = {}
                head_loss(got, head, h_teacher=ref, teacher_head=head, kd_weight=1.0, chunk=KL_TOKEN_CHUNK, stats=stats)
                total += stats["kl"] * ref.shape[0]
                count += ref.shape[0]
        total, count = all_reduce_sum(torch.tensor([total, count], dtype=torch.float64, device=self.ctx.device)).tolist()
        self.evaluations += 1
        return math.exp(total / max(count, 1)) - 1.0


def make_evaluator(ctx, loss: str, rounding: str = "truncate"):
    """The search's loss function for ``loss`` in SEARCH_LOSSES (``ppl``: LossEvaluator, ``kl``:
    KLEvaluator)."""
    if loss not in SEARCH_LOSSES:
        from andactl.errors import ConfigError

        raise ConfigError(f"unknown search loss {loss!r}; choose one of {', '.join(SEARCH_LOSSES)}")
    return (LossEvaluator if loss == "ppl" else KLEvaluator)(ctx, rounding)


def tuple_bits(t) -> dict[str, int]:
    """(M_qkv, M_o, M_u, M_d) -> {"qkv": .., "o": .., "u": .., "d": ..}."""
    return dict(zip(ANDA_TYPES, (int(v) for v in t)))
