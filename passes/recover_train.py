"""The recovery training loop: AdamW, warm-up + cosine/linear schedule, gradient accumulation,
chunked KD/CE loss on the frozen head, held-out loss every ``eval_every`` steps.

Invariants: seeded (global RNG is seeded from ``seed`` before the first step and batches follow a
permutation drawn from their own generator), so the same inputs give identical weights; nothing
is written anywhere (the caller writes the artifact only after this returns); autocast to bf16
only when the device computes bf16 natively.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field

import torch

from andactl.errors import NumericsError
from andactl.instruments import megabytes
from andactl.models.loading import native_bf16
from andactl.passes.recover_loss import SplitHeads, head_loss, head_matrix, split_heads_bytes
from andactl.passes.recover_topk import SparseTeacher

log = logging.getLogger("andactl")

# Activation checkpointing's default (TrainSettings.checkpoint None): the decoder layers whose
# intermediates fit in this many bytes (layer_activation_bytes each) keep them for backward, the
# rest recompute theirs. SmolLM2-135M sliced 25%, `recover --full`, 4 x 256 tokens, bf16 autocast
# on the 2-core Xeon: every layer recomputing 271 tokens/s at 3.23 GB, none 311 tokens/s at 3.86 GB
# (docs/RECOVER.md, twenty-ninth round).
ACTIVATION_BUDGET_BYTES = 512 << 20


@dataclass
class TrainSettings:
    steps: int
    lr: float
    batch_size: int
    grad_accum: int = 1
    warmup: float = 0.1  # fraction of steps
    schedule: str = "cosine"  # or "linear"
    kd_weight: float = 1.0
    ce_weight: float = 0.0
    eval_every: int = 10
    checkpoint: bool | None = None  # recompute decoder layers' activations in backward: all, none, None = recomputed_layers
    head_products: str = "auto"  # recover_loss.HEAD_PRODUCTS: how the frozen heads multiply
    max_grad_norm: float = 1.0
    seed: int = 0
    quiet: bool = False


@dataclass
class History:
    """Per-step training loss and tokens/s; held-out loss at the steps it was measured."""

    loss: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    ce: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    held_out: list[tuple[int, float]] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)  # each optimiser step's wall time, held-out passes excluded
    tokens: int = 0
    seconds: float = 0.0
    head_products: str = "float32 (torch)"  # how the frozen heads multiply (recover_loss.SplitHeads)
    recomputed_layers: int = 0  # decoder layers checkpointed (recomputed in backward)

    def to_dict(self) -> dict:
        return {"loss": [round(v, 6) for v in self.loss], "kl": [round(v, 6) for v in self.kl],
                "ce": [round(v, 6) for v in self.ce], "lr": self.lr,
                "held_out": [{"step": s, "loss": round(v, 6)} for s, v in self.held_out],
                "tokens": self.tokens, "seconds": round(self.seconds, 2),
                "step_seconds": [round(v, 4) for v in self.step_seconds],
                "tokens_per_second": round(self.tokens / self.seconds, 1) if self.seconds else None,
                "head_products": self.head_products, "recomputed_layers": self.recomputed_layers}


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the device computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else None (fp32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if native_bf16() else None


def lr_factor(step: int, steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warm-up, then cosine or linear to 0."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    rest = max(1, steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / rest)
    return 0.5 * (1 + math.cos(math.pi * t)) if schedule == "cosine" else 1.0 - t


class Student:
    """Final hidden states and head of the model being trained (peft-wrapped or not)."""

    def __init__(self, model, adapter):
        self.body = model.base_model  # the HF decoder body; peft injects into it in place
        self.head = adapter.head()
        self.layers = adapter.layers()

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        return self.body(input_ids=ids, use_cache=False).last_hidden_state


def packed_heads_bytes(student: Student, teacher, kd_weight: float) -> int:
    """recover_loss.split_heads_bytes of this run's heads (the teacher's when it runs in process)."""
    in_process = isinstance(teacher, Student) and kd_weight
    return split_heads_bytes(tuple(head_matrix(student.head).weight.shape),
                             tuple(head_matrix(teacher.head).weight.shape) if in_process else None)


def batch_loss(student: Student, teacher, ids: torch.Tensor, s: TrainSettings, stats: dict,
               targets=None, splits: SplitHeads | None = None) -> torch.Tensor:
    """Loss of one batch [B, T]: positions 0..T-2 predict tokens 1..T-1 (CE) and match the teacher's
    distribution there (KL): the in-process ``teacher``'s (a Student), or precomputed top-k
    ``targets`` of these rows (recover_topk.TopKTargets) when the teacher is a SparseTeacher.
    ``splits``: the run's packed heads (recover_loss.SplitHeads), or None for torch's GEMM."""
    h = student.hidden(ids)[:, :-1].reshape(-1, student.head.in_features)
    labels = ids[:, 1:].reshape(-1) if s.ce_weight else None
    if targets is not None:
        return head_loss(h, student.head, labels, kd_weight=s.kd_weight, ce_weight=s.ce_weight, stats=stats,
                         teacher_topk=targets.flat(h.device) if s.kd_weight else None, splits=splits)
    h_t = None
    if isinstance(teacher, Student) and s.kd_weight:
        with torch.no_grad():
            h_t = teacher.hidden(ids)[:, :-1].reshape(-1, teacher.head.in_features)
    return head_loss(h, student.head, labels, h_t, teacher.head if h_t is not None else None,
                     s.kd_weight, s.ce_weight, stats=stats, splits=splits)


def _rows_targets(teacher, split: str, rows: torch.Tensor):
    """The precomputed targets of ``rows`` of ``split`` (train / held_out), or None for an in-process teacher."""
    return getattr(teacher, split).rows(rows) if isinstance(teacher, SparseTeacher) else None


@torch.no_grad()
def held_out_loss(student: Student, teacher, ids: torch.Tensor, s: TrainSettings, batch_size: int,
                  splits: SplitHeads | None = None) -> float:
    """Training objective on ``ids`` (no dropout), averaged over batches."""
    model_training = student.body.training
    student.body.eval()
    try:
        losses = []
        for i in range(0, ids.shape[0], batch_size):
            rows = torch.arange(i, min(i + batch_size, ids.shape[0]))
            targets = _rows_targets(teacher, "held_out", rows)
            losses.append(float(batch_loss(student, teacher, ids[rows], s, {}, targets, splits)))
    finally:
        student.body.train(model_training)
    return sum(losses) / len(losses)


def _casts_held(device: torch.device, amp: torch.dtype | None):
    """Around one optimizer step's forwards and backwards: autocast keeps its copies of the trained
    weights in ``amp`` (cast from leaf tensors that require grad) until the outermost autocast
    context closes. This outer context, with autocast disabled, keeps them through backward, where
    the checkpointed layers' recompute would otherwise cast every weight a second time; backward
    itself still runs with autocast off. The copies (2 bytes per trained weight) are dropped when it
    closes, before the optimizer changes the weights, so results are bit-identical (measured: +3.5%
    tokens/s, +0.15 GB on SmolLM2 sliced 25% --full, docs/RECOVER.md twenty-sixth round)."""
    return torch.autocast(device.type, enabled=False) if amp is not None else contextlib.nullcontext()


def layer_activation_bytes(hidden: int, widest: int, heads: int, batch: int, seqlen: int) -> int:
    """An upper estimate of what one decoder layer keeps for backward at ``batch`` x ``seqlen``
    tokens: 4 x ``hidden`` + 2 x ``widest`` float32 values per token and one float32 attention
    matrix per head and sequence (SmolLM2-135M sliced 25% at 4 x 256 tokens: 31.5 MB estimated,
    about 21 MB measured)."""
    tokens = batch * seqlen
    return tokens * (4 * hidden + 2 * widest) * 4 + batch * heads * seqlen ** 2 * 4


def recomputed_layers(layers: int, per_layer: int, checkpoint: bool | None) -> int:
    """How many of ``layers`` decoder layers recompute their activations in backward: all for
    ``checkpoint`` True, none for False; for None, all but as many as ACTIVATION_BUDGET_BYTES holds
    at ``per_layer`` bytes each. The trained weights do not depend on it (tested)."""
    if checkpoint is not None:
        return layers if checkpoint else 0
    return max(0, layers - ACTIVATION_BUDGET_BYTES // max(1, per_layer))


def student_recomputed_layers(student: "Student", s: TrainSettings, seqlen: int) -> int:
    """recomputed_layers for ``student`` trained on ``s.batch_size`` x ``seqlen``-token batches
    (its config's width and heads, the first layer's widest linear)."""
    cfg = student.body.config
    widest = max(m.out_features for m in student.layers[0].modules() if isinstance(m, torch.nn.Linear))
    per_layer = layer_activation_bytes(int(cfg.hidden_size), widest, int(cfg.num_attention_heads), s.batch_size,
                                       seqlen)
    return recomputed_layers(len(student.layers), per_layer, s.checkpoint)


@contextlib.contextmanager
def checkpointed(layers):
    """Within the block each of ``layers`` keeps only its inputs for backward and recomputes the
    rest (torch.utils.checkpoint, RNG state preserved, so dropout masks and results are the same
    as without it); their activation memory falls from every layer's intermediates to one layer's."""
    from torch.utils.checkpoint import checkpoint

    for layer in layers:
        layer.forward = (lambda *a, _f=layer.forward, **k: checkpoint(_f, *a, use_reentrant=False, **k))
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


@contextlib.contextmanager
def _progress(total: int, quiet: bool):
    """Yields ``update(step, loss, tok_s)``: a rich bar on stderr (tty) or a log line every 10%."""
    if quiet or not sys.stderr.isatty():
        every = max(1, total // 10)

        def update(step, loss, tok_s):
            if not quiet and (step % every == 0 or step == total):
                log.info("recover step %d/%d loss %.4f %.0f tok/s", step, total, loss, tok_s)

        yield update
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from andactl.consoles import stderr_console

    with Progress("recover", BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                  TextColumn("{task.fields[tok_s]} tok/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as bar:
        task = bar.add_task("recover", total=total, loss="-", tok_s="-")

        def update(step, loss, tok_s):
            bar.update(task, completed=step, loss=f"{loss:.4f}", tok_s=f"{tok_s:.0f}")

        yield update


def train(student: Student, teacher: Student | SparseTeacher | None, params: list, train_ids: torch.Tensor,
          held_ids: torch.Tensor, s: TrainSettings, device: torch.device) -> History:
    """Runs ``s.steps`` optimiser steps of ``s.batch_size * s.grad_accum`` sequences each, taking
    ``train_ids`` rows in a seeded permutation (each row once while rows last). ``teacher``: the
    model in this process, its precomputed top-k targets of ``train_ids`` / ``held_ids``, or None."""
    torch.manual_seed(s.seed)
    order = torch.randperm(train_ids.shape[0], generator=torch.Generator().manual_seed(s.seed))
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0)
    warmup_steps = int(round(s.warmup * s.steps))
    amp = autocast_dtype(device)
    hist = History()
    student.body.train()
    per_step = s.batch_size * s.grad_accum
    packed = packed_heads_bytes(student, teacher, s.kd_weight)
    splits = SplitHeads.choose(s.head_products, device, packed)
    if splits is not None:
        hist.head_products = "split bf16 on AMX tiles (float32-grade)"
        log.info("recover: the heads multiply in split bf16 on AMX tiles (%.0f MB packed; --head-products float32: "
                 "torch's float32 GEMM)", megabytes(packed))
    hist.held_out.append((0, held_out_loss(student, teacher, held_ids, s, s.batch_size, splits)))
    layers = len(student.layers)
    hist.recomputed_layers = student_recomputed_layers(student, s, train_ids.shape[1])
    log.info("recover: %d of %d decoder layers recompute their activations in backward (--checkpoint: all, "
             "--no-checkpoint: none)", hist.recomputed_layers, layers)
    t0 = time.perf_counter()
    with _progress(s.steps, s.quiet) as update, checkpointed(list(student.layers)[layers - hist.recomputed_layers:]):
        for step in range(s.steps):
            t_step = time.perf_counter()
            factor = lr_factor(step, s.steps, warmup_steps, s.schedule)
            for group in opt.param_groups:
                group["lr"] = s.lr * factor
            stats_sum = {"loss": 0.0, "kl": 0.0, "ce": 0.0}
            with _casts_held(device, amp):
                for micro in range(s.grad_accum):
                    start = (step * per_step + micro * s.batch_size) % train_ids.shape[0]
                    rows = order[start:start + s.batch_size]
                    ids = train_ids[rows].to(device)
                    stats: dict = {}
                    ctx = torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
                    with ctx:
                        loss = batch_loss(student, teacher, ids, s, stats, _rows_targets(teacher, "train", rows), splits)
                    (loss / s.grad_accum).backward()
                    stats_sum["loss"] += float(loss.detach()) / s.grad_accum
                    stats_sum["kl"] += stats.get("kl", 0.0) / s.grad_accum
                    stats_sum["ce"] += stats.get("ce", 0.0) / s.grad_accum
                    hist.tokens += ids.numel()
            if s.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            hist.loss.append(stats_sum["loss"])
            hist.kl.append(stats_sum["kl"])
            hist.ce.append(stats_sum["ce"])
            hist.lr.append(s.lr * factor)
            hist.step_seconds.append(time.perf_counter() - t_step)
            done = step + 1
            if done % s.eval_every == 0 or done == s.steps:
                hist.held_out.append((done, held_out_loss(student, teacher, held_ids, s, s.batch_size, splits)))
            hist.seconds = time.perf_counter() - t0
            update(done, stats_sum["loss"], hist.tokens / max(hist.seconds, 1e-9))
            _check_diverged(stats_sum["loss"], hist.held_out[-1][1], done, s.lr)
    _check_weights_finite(params, s.lr)
    student.body.eval()
    return hist


def _check_diverged(loss: float, held_out: float, step: int, lr: float) -> None:
    """NumericsError as soon as the training loss or the last held-out loss is NaN or Inf: the run
    has diverged and every later step would be wasted (nothing is written)."""
    if not (math.isfinite(loss) and math.isfinite(held_out)):
        raise NumericsError(f"recovery diverged: the loss is {loss if not math.isfinite(loss) else held_out} at step "
                            f"{step}; nothing was written (try a lower --lr than {lr:g})")


def _check_weights_finite(params, lr: float) -> None:
    """NumericsError unless every trained weight is finite after the last step (an artifact with a
    NaN weight could not be loaded again)."""
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise NumericsError(f"recovery diverged: a trained weight is NaN or Inf after the last step; nothing was "
                            f"written (try a lower --lr than {lr:g})")

