"""Distillation / cross-entropy loss on a frozen LM head, computed in chunks of tokens.

The full logits of a batch ([tokens, vocab] in float32, 49152 wide for SmolLM2) are never held:
each chunk's student (and teacher) logits are built, reduced to the loss and to the gradient with
respect to the student's final hidden states, and dropped. The gradient is exact (it is the
analytic gradient of softmax cross-entropy / KL), so backward only scales the stored gradient.
"""
from __future__ import annotations

import torch

IGNORE = -100
DEFAULT_CHUNK = 256  # tokens per chunk: 256 x 49152 x 4 B = 48 MiB per logits-sized temporary


def _logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    out = h.float() @ w.float().t()
    return out + b.float() if b is not None else out


class _ChunkedHeadLoss(torch.autograd.Function):
    """loss = kd_weight * mean_tokens KL(teacher || student) + ce_weight * mean_labelled CE."""

    @staticmethod
    def forward(ctx, h, w, b, h_t, w_t, b_t, labels, kd_weight, ce_weight, chunk, stats):
        n = h.shape[0]
        n_ce = int((labels != IGNORE).sum()) if labels is not None else 0
        want_grad = ctx.needs_input_grad[0]  # False under no_grad (held-out loss): skip the gradient work
        grad = torch.zeros(h.shape, dtype=torch.float32, device=h.device) if want_grad else None
        kl_sum = h.new_zeros((), dtype=torch.float64)
        ce_sum = h.new_zeros((), dtype=torch.float64)
        for i in range(0, n, chunk):
            s = _logits(h[i:i + chunk], w, b)
            logp = torch.log_softmax(s, dim=-1)
            p = logp.exp() if want_grad else None
            g = torch.zeros_like(s) if want_grad else None
            if kd_weight and h_t is not None:
                logp_t = torch.log_softmax(_logits(h_t[i:i + chunk], w_t, b_t), dim=-1)
                p_t = logp_t.exp()
                kl_sum += (p_t * (logp_t - logp)).sum(dtype=torch.float64)
                if want_grad:
                    g += (kd_weight / n) * (p - p_t)
                del logp_t, p_t
            if ce_weight and n_ce:
                lab = labels[i:i + chunk]
                keep = lab != IGNORE
                rows = keep.nonzero().squeeze(1)
                ce_sum -= logp[rows, lab[rows]].sum(dtype=torch.float64)
                if want_grad:
                    g[rows] += (ce_weight / n_ce) * p[rows]
                    g[rows, lab[rows]] -= ce_weight / n_ce
            if want_grad:
                grad[i:i + chunk] = g @ w.float()
            del s, logp, p, g
        kl = float(kl_sum) / n if h_t is not None else 0.0
        ce = float(ce_sum) / n_ce if n_ce else 0.0
        stats.update(kl=kl, ce=ce)
        ctx.save_for_backward(grad if want_grad else h.new_empty(0))  # no backward without grad
        ctx.out_dtype = h.dtype
        return h.new_tensor(kd_weight * kl + ce_weight * ce, dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return (grad * grad_out).to(ctx.out_dtype), None, None, None, None, None, None, None, None, None, None


def head_loss(h: torch.Tensor, head: torch.nn.Linear, labels: torch.Tensor | None = None,
              h_teacher: torch.Tensor | None = None, teacher_head: torch.nn.Linear | None = None,
              kd_weight: float = 1.0, ce_weight: float = 0.0, chunk: int = DEFAULT_CHUNK,
              stats: dict | None = None) -> torch.Tensor:
    """Scalar loss from final hidden states ``h`` [N, d] through the frozen ``head``.

    ``labels`` [N] (IGNORE = no target) feed the CE term; ``h_teacher`` [N, d_t] through
    ``teacher_head`` feed the KL term. Gradients flow to ``h`` only (the heads are frozen).
    ``stats`` receives the unweighted ``kl`` and ``ce`` means as floats."""
    if h_teacher is None:
        kd_weight = 0.0
    if labels is None:
        ce_weight = 0.0
    if not kd_weight and not ce_weight:
        raise ValueError("head_loss needs a teacher (kd_weight > 0) or labels (ce_weight > 0)")
    if teacher_head is not None and teacher_head.weight.shape[0] != head.weight.shape[0]:
        raise ValueError(f"teacher vocabulary {teacher_head.weight.shape[0]} != student {head.weight.shape[0]}")
    return _ChunkedHeadLoss.apply(
        h, head.weight.detach(), None if head.bias is None else head.bias.detach(),
        None if h_teacher is None else h_teacher.detach(),
        None if teacher_head is None else teacher_head.weight.detach(),
        None if teacher_head is None or teacher_head.bias is None else teacher_head.bias.detach(),
        labels, float(kd_weight), float(ce_weight), int(chunk), stats if stats is not None else {},
    )


def reference_head_loss(h, head, labels=None, h_teacher=None, teacher_head=None, kd_weight=1.0, ce_weight=0.0):
    """The same loss by plain autograd over full logits (for tests)."""
    logp = torch.log_softmax(head(h).float(), dim=-1)
    loss = h.new_zeros((), dtype=torch.float32)
    if h_teacher is not None and kd_weight:
        logp_t = torch.log_softmax(teacher_head(h_teacher).float(), dim=-1)
        loss = loss + kd_weight * (logp_t.exp() * (logp_t - logp)).sum(-1).mean()
    if labels is not None and ce_weight:
        loss = loss + ce_weight * torch.nn.functional.nll_loss(logp, labels, ignore_index=IGNORE)
    return loss
