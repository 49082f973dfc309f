"""Distillation / cross-entropy loss on a frozen LM head, computed in chunks of tokens.

The full logits of a batch ([tokens, vocab] in float32, 49152 wide for SmolLM2) are never held:
each chunk's student (and teacher) logits are built, reduced to the loss and to the gradient with
respect to the student's final hidden states, and dropped. The gradient is exact (it is the
analytic gradient of softmax cross-entropy / KL), so backward only scales the stored gradient.
"""
from __future__ import annotations

import torch

from andactl.models.tied_head import is_tied_head

IGNORE = -100
DEFAULT_CHUNK = 256  # tokens per chunk: 256 x 49152 x 4 B = 48 MiB per logits-sized temporary


def head_logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """float32 logits of hidden states ``h`` through a head of weight ``w`` and bias ``b``, under
    autocast too (bf16 logits of 16-32 are rounded to steps of 0.125: up to 6% off per probability)."""
    with torch.autocast(h.device.type, enabled=False):
        out = h.float() @ w.float().t()
        return out + b.float() if b is not None else out


def split_head(head: torch.nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.nn.Module]:
    """(input of the head's vocabulary matrix, the linear holding it): ``h`` and ``head``, or for a
    TiedHead (andactl/models/tied_head.py) its map applied in float32 outside autocast and its table.
    Differentiable in ``h`` only (the map is frozen like the head)."""
    if not is_tied_head(head):
        return h, head
    pre = head.pre
    with torch.autocast(h.device.type, enabled=False):
        x = h.float() @ pre.weight.detach().float().t()
        return (x + pre.bias.detach().float() if pre.bias is not None else x), head.table


def log_tail(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """log(sum of softmax(logits) over the columns not in ``idx``) per row, stably (masked logsumexp)."""
    return torch.logsumexp(logits.scatter(1, idx, float("-inf")), dim=-1) - torch.logsumexp(logits, dim=-1)


def _sparse_kl(s, logp, ti, tl, tt):
    """(summed KL, q) for top-k targets: KL between the teacher's and the student's distributions
    coarsened to the k kept tokens + one tail bucket; q is the target whose difference to the
    student's probabilities is the gradient (the teacher on the kept tokens, its tail mass spread
    like the student's over the rest)."""
    log_rs = log_tail(s, ti)
    p_t, r_t = tl.exp(), tt.exp()
    tail = torch.where(r_t > 0, r_t * (tt - log_rs), torch.zeros_like(r_t))
    kl = (p_t * (tl - logp.gather(1, ti))).sum(dtype=torch.float64) + tail.sum(dtype=torch.float64)
    delta = torch.where(torch.isneginf(tt), torch.full_like(tt, float("-inf")), tt - log_rs)
    q = (logp + delta[:, None]).exp().scatter_(1, ti, p_t)
    return kl, q


class _ChunkedHeadLoss(torch.autograd.Function):
    """loss = kd_weight * mean_tokens KL(teacher || student) + ce_weight * mean_labelled CE, every
    step in float32 whatever autocast is active (the loss and its gradient are differences of
    probabilities that bf16 would round away)."""

    @staticmethod
    def forward(ctx, *args):
        with torch.autocast(args[0].device.type, enabled=False):
            return _ChunkedHeadLoss._forward(ctx, *args)

    @staticmethod
    def _forward(ctx, h, w, b, h_t, w_t, b_t, topk, labels, kd_weight, ce_weight, chunk, stats):
        n = h.shape[0]
        n_ce = int((labels != IGNORE).sum()) if labels is not None else 0
        want_grad = ctx.needs_input_grad[0]  # False under no_grad (held-out loss): skip the gradient work
        grad = torch.zeros(h.shape, dtype=torch.float32, device=h.device) if want_grad else None
        kl_sum = h.new_zeros((), dtype=torch.float64)
        ce_sum = h.new_zeros((), dtype=torch.float64)
        for i in range(0, n, chunk):
            s = head_logits(h[i:i + chunk], w, b)
            logp = torch.log_softmax(s, dim=-1)
            p = logp.exp() if want_grad else None
            g = torch.zeros_like(s) if want_grad else None
            if kd_weight and h_t is not None:
                logp_t = torch.log_softmax(head_logits(h_t[i:i + chunk], w_t, b_t), dim=-1)
                p_t = logp_t.exp()
                kl_sum += (p_t * (logp_t - logp)).sum(dtype=torch.float64)
                if want_grad:
                    g += (kd_weight / n) * (p - p_t)
                del logp_t, p_t
            elif kd_weight and topk is not None:
                part_kl, q = _sparse_kl(s, logp, *(t[i:i + chunk] for t in topk))
                kl_sum += part_kl
                if want_grad:
                    g += (kd_weight / n) * (p - q)
                del q
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
        kl = float(kl_sum) / n if h_t is not None or topk is not None else 0.0
        ce = float(ce_sum) / n_ce if n_ce else 0.0
        stats.update(kl=kl, ce=ce)
        ctx.save_for_backward(grad if want_grad else h.new_empty(0))  # no backward without grad
        ctx.out_dtype = h.dtype
        return h.new_tensor(kd_weight * kl + ce_weight * ce, dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return (grad * grad_out).to(ctx.out_dtype), *([None] * 11)


def head_loss(h: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor | None = None,
              h_teacher: torch.Tensor | None = None, teacher_head: torch.nn.Module | None = None,
              kd_weight: float = 1.0, ce_weight: float = 0.0, chunk: int = DEFAULT_CHUNK,
              stats: dict | None = None, teacher_topk: tuple | None = None) -> torch.Tensor:
    """Scalar loss from final hidden states ``h`` [N, d] through the frozen ``head`` (a TiedHead:
    through its map, in float32, then its table).

    ``labels`` [N] (IGNORE = no target) feed the CE term; the KL term comes from ``h_teacher``
    [N, d_t] through ``teacher_head`` (the teacher's full distribution) or from ``teacher_topk`` =
    (idx [N, K], logp [N, K], log_tail [N]) (recover_topk: the teacher's k most likely tokens and
    the mass of the rest; the KL of the two distributions coarsened to those k tokens + one tail
    bucket, equal to the full KL when K is the vocabulary). Gradients flow to ``h`` only (the heads
    are frozen). ``stats`` receives the unweighted ``kl`` and ``ce`` means as floats."""
    if h_teacher is None and teacher_topk is None:
        kd_weight = 0.0
    if labels is None:
        ce_weight = 0.0
    if not kd_weight and not ce_weight:
        raise ValueError("head_loss needs a teacher (kd_weight > 0) or labels (ce_weight > 0)")
    if teacher_head is not None and teacher_head.out_features != head.out_features:
        raise ValueError(f"teacher vocabulary {teacher_head.out_features} != student {head.out_features}")
    h, head = split_head(head, h)
    if h_teacher is not None and teacher_head is not None:
        h_teacher, teacher_head = split_head(teacher_head, h_teacher.detach())
    return _ChunkedHeadLoss.apply(
        h, head.weight.detach(), None if head.bias is None else head.bias.detach(),
        None if h_teacher is None else h_teacher.detach(),
        None if teacher_head is None else teacher_head.weight.detach(),
        None if teacher_head is None or teacher_head.bias is None else teacher_head.bias.detach(),
        teacher_topk, labels, float(kd_weight), float(ce_weight), int(chunk), stats if stats is not None else {},
    )


def reference_head_loss(h, head, labels=None, h_teacher=None, teacher_head=None, kd_weight=1.0, ce_weight=0.0,
                        teacher_topk=None):
    """The same loss by plain autograd over full logits (for tests)."""
    logits = head(h).float()
    logp = torch.log_softmax(logits, dim=-1)
    loss = h.new_zeros((), dtype=torch.float32)
    if h_teacher is not None and kd_weight:
        logp_t = torch.log_softmax(teacher_head(h_teacher).float(), dim=-1)
        loss = loss + kd_weight * (logp_t.exp() * (logp_t - logp)).sum(-1).mean()
    elif teacher_topk is not None and kd_weight:
        idx, logp_k, tail = teacher_topk
        log_rs = torch.log(1 - logp.gather(1, idx).exp().sum(-1))
        kept = (logp_k.exp() * (logp_k - logp.gather(1, idx))).sum(-1)
        loss = loss + kd_weight * (kept + torch.where(tail.exp() > 0, tail.exp() * (tail - log_rs), 0.0)).mean()
    if labels is not None and ce_weight:
        loss = loss + ce_weight * torch.nn.functional.nll_loss(logp, labels, ignore_index=IGNORE)
    return loss
