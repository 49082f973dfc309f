"""Distillation / cross-entropy loss on a frozen LM head, computed in chunks of tokens.

The full logits of a batch ([tokens, vocab] in float32, 49152 wide for SmolLM2) are never held:
each chunk's student (and teacher) logits are built, reduced to the loss and to the gradient with
respect to the student's final hidden states, and dropped. The gradient is exact (it is the
analytic gradient of softmax cross-entropy / KL), so backward only scales the stored gradient.
Every chunk works in three logits-sized buffers allocated once per call (in place, ``out=``):
a fresh 48 MiB tensor per operation costs as much time as the operation (its pages fault in).
On CPUs with AMX-BF16 tiles a ``SplitHeads`` (one per training run, ``--head-products``) holds
the frozen head matrices packed for kernels/split_gemm.py, whose products are float32-grade (within
2^-16 of |h||w| per product): 2.7x the float32 GEMM's speed for the logits here, 1.5x for the
gradient; elsewhere the heads multiply in float32 by torch.
"""
from __future__ import annotations

import torch

from andactl.kernels import split_gemm
from andactl.models.tied_head import is_tied_head

IGNORE = -100
DEFAULT_CHUNK = 256  # tokens per chunk: 256 x 49152 x 4 B = 48 MiB per logits-sized temporary
HEAD_PRODUCTS = ("auto", "split", "float32")  # recover's --head-products
# "auto" packs the heads for split_gemm only up to this many bytes (SmolLM2 sliced 25%, in process:
# 340 MB; a Qwen3-0.6B-shaped slice, whose tied 151936 x 1024 table is packed three times: 1.9 GB, stays float32)
SPLIT_HEADS_AUTO_BYTES = 2 ** 30


def uses_split_heads(mode: str, packed_bytes: int, tiles: bool) -> bool:
    """Whether recovery multiplies its heads with split_gemm: ``mode`` "split" where the CPU has
    AMX-BF16 ``tiles``, "auto" there too when the packed heads take at most SPLIT_HEADS_AUTO_BYTES,
    "float32" never (torch's float32 GEMM)."""
    return tiles and (mode == "split" or (mode == "auto" and packed_bytes <= SPLIT_HEADS_AUTO_BYTES))


def split_heads_bytes(student: tuple[int, int], teacher: tuple[int, int] | None) -> int:
    """Bytes SplitHeads packs in training for a student vocabulary matrix of shape ``student`` (both
    orientations: logits and gradient) and, with an in-process teacher, its matrix (logits only)."""
    return 2 * split_gemm.packed_bytes(*student) + (split_gemm.packed_bytes(*teacher) if teacher else 0)


def head_matrix(head: torch.nn.Module) -> torch.nn.Module:
    """The linear that holds ``head``'s vocabulary matrix: the head, or a TiedHead's table."""
    return head.table if is_tied_head(head) else head


class SplitHeads:
    """Head weights packed for split_gemm, once per training run: ``get(w)`` is w's SplitMatrix,
    packed again only when w's storage, shape or version (an in-place update) changes."""

    def __init__(self):
        self._packed: dict = {}

    @staticmethod
    def choose(mode: str, device: torch.device, packed_bytes: int) -> "SplitHeads | None":
        """A SplitHeads where ``uses_split_heads`` says so for ``packed_bytes`` of packed heads and
        split_gemm runs on AMX-BF16 tiles here (CPU), else None (torch's float32 GEMM)."""
        tiles = torch.device(device).type == "cpu" and mode != "float32" and split_gemm.hardware()
        return SplitHeads() if uses_split_heads(mode, packed_bytes, tiles) else None

    def get(self, w: torch.Tensor) -> split_gemm.SplitMatrix:
        key = (w.data_ptr(), tuple(w.shape))
        version, packed = self._packed.get(key, (None, None))
        if packed is None or version != w._version:
            packed = split_gemm.SplitMatrix(w.detach())
            self._packed[key] = (w._version, packed)
        return packed

    def work(self, rows: int, width: int, device: torch.device) -> torch.Tensor:
        """split_mm's buffer for ``rows`` hidden states of ``width``."""
        return torch.empty(split_gemm.work_size(rows, width), dtype=torch.bfloat16, device=device)


def head_logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, out: torch.Tensor | None = None,
                split: split_gemm.SplitMatrix | None = None, work: torch.Tensor | None = None) -> torch.Tensor:
    """float32 logits of hidden states ``h`` through a head of weight ``w`` and bias ``b``, under
    autocast too (bf16 logits of 16-32 are rounded to steps of 0.125: up to 6% off per probability);
    written into ``out`` (float32, [rows, vocab]) when given, with the same values. With ``split``
    (w's SplitMatrix; ``out`` and split_mm's ``work`` given) the product is split_gemm's."""
    with torch.autocast(h.device.type, enabled=False):
        if split is not None:
            out = split.rows_times(h.float().contiguous(), out, work)
        else:
            out = torch.mm(h.float(), w.float().t(), out=out)
        return out.add_(b.float()) if b is not None else out


def split_head(head: torch.nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.nn.Module]:
    """(input of the head's vocabulary matrix, the linear holding it): ``h`` and ``head``, or for a
    TiedHead (andactl/models/tied_head.py) its map applied in float32 outside autocast and its table.
    Differentiable in ``h`` only (the map is frozen like the head)."""
    if not is_tied_head(head):
        return h, head
    pre = head.pre
    with torch.autocast(h.device.type, enabled=False):
        x = h.float() @ pre.weight.detach().float().t()
        return (x + pre.bias.detach().float() if pre.bias is not None else x), head_matrix(head)


def log_tail(logits: torch.Tensor, idx: torch.Tensor, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """log(sum of softmax(logits) over the columns not in ``idx``) per row, stably (masked logsumexp;
    -inf where ``idx`` holds every column). With ``scratch`` (like ``logits``, overwritten) both
    logsumexps run in it, in place, instead of in fresh logits-sized temporaries."""
    if scratch is None:
        return torch.logsumexp(logits.scatter(1, idx, float("-inf")), dim=-1) - torch.logsumexp(logits, dim=-1)
    whole = _logsumexp_(scratch.copy_(logits))
    return _logsumexp_(scratch.copy_(logits).scatter_(1, idx, float("-inf"))) - whole


def _logsumexp_(x: torch.Tensor) -> torch.Tensor:
    """logsumexp over the last dimension, computed in ``x`` (overwritten): the row maximum taken
    out before ``exp`` as torch.logsumexp does; -inf for a row of -inf only."""
    top = x.amax(dim=-1, keepdim=True)
    top.masked_fill_(torch.isneginf(top), 0.0)
    return x.sub_(top).exp_().sum(dim=-1).log_().add_(top.squeeze(-1))


def _summed_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) of two [m, V] float32 tensors, without a product-sized temporary: a float32 dot
    per row, the rows summed in float64."""
    return torch.stack([torch.dot(x, y) for x, y in zip(a, b)]).sum(dtype=torch.float64)


def _gradient_of_logits(logp, target, rows, lab, kd_scale: float, ce_scale: float) -> torch.Tensor:
    """d loss / d logits, written over ``logp`` [m, V] (consumed): ``kd_scale`` (p - target) where a
    ``target`` is given, plus ``ce_scale`` (p - onehot(label)) on the labelled ``rows``."""
    p = logp.exp_()
    kd = kd_scale if target is not None else 0.0
    if rows is None:
        p.mul_(kd)
    elif rows.numel() == p.shape[0]:
        p.mul_(kd + ce_scale)
    else:
        coef = torch.full((p.shape[0], 1), kd, dtype=p.dtype, device=p.device)
        coef[rows] += ce_scale
        p.mul_(coef)
    if target is not None:
        p.sub_(target, alpha=kd_scale)
    if rows is not None:
        p[rows, lab[rows]] -= ce_scale
    return p


def _sparse_kl(s, logp, ti, tl, tt, out):
    """(summed KL, q) for top-k targets: KL between the teacher's and the student's distributions
    coarsened to the k kept tokens + one tail bucket; q (written into ``out``, like ``s``) is the
    target whose difference to the student's probabilities is the gradient (the teacher on the kept
    tokens, its tail mass spread like the student's over the rest)."""
    log_rs = log_tail(s, ti, scratch=out)
    p_t, r_t = tl.exp(), tt.exp()
    tail = torch.where(r_t > 0, r_t * (tt - log_rs), torch.zeros_like(r_t))
    kl = (p_t * (tl - logp.gather(1, ti))).sum(dtype=torch.float64) + tail.sum(dtype=torch.float64)
    delta = torch.where(torch.isneginf(tt), torch.full_like(tt, float("-inf")), tt - log_rs)
    q = torch.add(logp, delta[:, None], out=out).exp_().scatter_(1, ti, p_t)
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
    def _forward(ctx, h, w, b, h_t, w_t, b_t, topk, labels, kd_weight, ce_weight, chunk, stats, splits):
        n = h.shape[0]
        n_ce = int((labels != IGNORE).sum()) if labels is not None else 0
        want_grad = ctx.needs_input_grad[0]  # False under no_grad (held-out loss): skip the gradient work
        grad = torch.empty(h.shape, dtype=torch.float32, device=h.device) if want_grad else None
        kl_sum = h.new_zeros((), dtype=torch.float64)
        ce_sum = h.new_zeros((), dtype=torch.float64)
        full_kd = bool(kd_weight) and h_t is not None
        sparse_kd = bool(kd_weight) and not full_kd and topk is not None
        # three logits-sized float32 buffers reused by every chunk: a fresh one per operation costs
        # as much as the operation itself (each is a new mapping whose pages fault in)
        work = torch.empty((3, min(chunk, n), w.shape[0]), dtype=torch.float32, device=h.device)
        split = split_t = tiles = None
        if splits is not None:  # split_gemm's products; x's tiles of a chunk of hidden states in `tiles`
            split, split_t = splits.get(w), splits.get(w_t) if full_kd else None
            tiles = splits.work(min(chunk, n), max(h.shape[1], h_t.shape[1] if full_kd else 0), h.device)
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            s, logp, other = work[0, :m], work[1, :m], work[2, :m]
            head_logits(h[i:i + m], w, b, out=s, split=split, work=tiles)
            torch.log_softmax(s, dim=-1, out=logp)
            target = None  # the teacher's probabilities the student's are pulled towards
            if full_kd:
                head_logits(h_t[i:i + m], w_t, b_t, out=s, split=split_t, work=tiles)  # the student's logits are no longer needed
                torch.log_softmax(s, dim=-1, out=other)
                target = torch.exp(other, out=s)
                kl_sum += _summed_product(target, other.sub_(logp))  # sum p_t (log p_t - log p)
            elif sparse_kd:
                part_kl, target = _sparse_kl(s, logp, *(t[i:i + m] for t in topk), out=other)
                kl_sum += part_kl
            rows = lab = None
            if ce_weight and n_ce:
                lab = labels[i:i + m]
                rows = (lab != IGNORE).nonzero().squeeze(1)
                ce_sum -= logp[rows, lab[rows]].sum(dtype=torch.float64)
            if want_grad:
                g = _gradient_of_logits(logp, target, rows, lab, kd_weight / n, ce_weight / max(n_ce, 1))
                if split is None:
                    torch.mm(g, w, out=grad[i:i + m])
                else:  # g's tiles go into the first buffer: its logits or target are consumed by now
                    room = work[0].view(-1).view(torch.bfloat16)
                    if room.numel() < split_gemm.work_size(m, w.shape[0]):  # a chunk of odd rows
                        room = splits.work(m, w.shape[0], h.device)
                    split.times(g, grad[i:i + m], room)
            del target
        kl = float(kl_sum) / n if full_kd or sparse_kd else 0.0
        ce = float(ce_sum) / n_ce if n_ce else 0.0
        stats.update(kl=kl, ce=ce)
        ctx.save_for_backward(grad if want_grad else h.new_empty(0))  # no backward without grad
        ctx.out_dtype = h.dtype
        return h.new_tensor(kd_weight * kl + ce_weight * ce, dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return (grad * grad_out).to(ctx.out_dtype), *([None] * 12)


def head_loss(h: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor | None = None,
              h_teacher: torch.Tensor | None = None, teacher_head: torch.nn.Module | None = None,
              kd_weight: float = 1.0, ce_weight: float = 0.0, chunk: int = DEFAULT_CHUNK,
              stats: dict | None = None, teacher_topk: tuple | None = None,
              splits: SplitHeads | None = None) -> torch.Tensor:
    """Scalar loss from final hidden states ``h`` [N, d] through the frozen ``head`` (a TiedHead:
    through its map, in float32, then its table).

    ``labels`` [N] (IGNORE = no target) feed the CE term; the KL term comes from ``h_teacher``
    [N, d_t] through ``teacher_head`` (the teacher's full distribution) or from ``teacher_topk`` =
    (idx [N, K], logp [N, K], log_tail [N]) (recover_topk: the teacher's k most likely tokens and
    the mass of the rest; the KL of the two distributions coarsened to those k tokens + one tail
    bucket, equal to the full KL when K is the vocabulary). Gradients flow to ``h`` only (the heads
    are frozen). ``stats`` receives the unweighted ``kl`` and ``ce`` means as floats. ``splits``:
    the heads' products by split_gemm (SplitHeads.choose), else torch's float32 GEMM."""
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
        splits,
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
