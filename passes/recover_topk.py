"""Precomputed top-k teacher targets: distillation without the teacher in memory during training.

For each position of each training (and held-out) sequence the teacher's K most likely next tokens
are kept with their log-probabilities, plus the log of the probability mass left outside them (the
"tail"). The teacher is then freed, so teacher and student are never held together: recovery of a
model whose teacher and student do not both fit in memory.

Invariants: targets are computed exactly as the in-process teacher's logits are in training (the
same hidden states, under the same autocast; the head and softmax in float32); with K = the vocabulary
size the tail is empty (log mass -inf) and the loss built on them is the full KL (recover_loss).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from andactl.kernels import split_gemm
from andactl.passes.recover_loss import DEFAULT_CHUNK, SplitHeads, head_logits, head_matrix, log_tail, split_head


@dataclass
class TopKTargets:
    """``idx`` [R, T-1, K] int64 token ids, ``logp`` [R, T-1, K] float32 teacher log-probabilities,
    ``log_tail`` [R, T-1] float32 log of 1 - sum(exp(logp)) (-inf where nothing is left), for the
    rows of one token matrix [R, T] (position t predicts token t+1); with ``index`` [n], the targets
    of a matrix of n rows whose row i is row ``index[i]`` of those R (repeated training text)."""

    idx: torch.Tensor
    logp: torch.Tensor
    log_tail: torch.Tensor
    index: torch.Tensor | None = None

    def rows(self, rows: torch.Tensor) -> "TopKTargets":
        """The targets of ``rows`` of the (indexed) matrix, as a plain TopKTargets."""
        stored = rows if self.index is None else self.index[rows]
        return TopKTargets(self.idx[stored], self.logp[stored], self.log_tail[stored])

    def flat(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(idx [N, K], logp [N, K], log_tail [N]) of every position in row order, on ``device``."""
        k = self.idx.shape[-1]
        return (self.idx.reshape(-1, k).to(device), self.logp.reshape(-1, k).to(device),
                self.log_tail.reshape(-1).to(device))

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.idx, self.logp, self.log_tail))


@dataclass
class SparseTeacher:
    """The teacher as precomputed targets of the training rows and of the held-out rows."""

    train: TopKTargets
    held_out: TopKTargets


def topk_of_logits(logits: torch.Tensor, k: int, scratch: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(idx, logp, log_tail) of float32 logits [N, V]: the k largest log-probabilities and the rest's
    mass; ``scratch`` (like ``logits``) holds the intermediates when given, with the same values."""
    logp_all = torch.log_softmax(logits, dim=-1, out=scratch)
    logp, idx = logp_all.topk(k, dim=-1)
    return idx, logp, log_tail(logits, idx, scratch=scratch)


def teacher_splits(teacher, head_products: str, device: torch.device) -> SplitHeads | None:
    """The SplitHeads of the teacher's top-k phase (recover_loss.uses_split_heads for its head alone)."""
    return SplitHeads.choose(head_products, device, split_gemm.packed_bytes(*head_matrix(teacher.head).weight.shape))


@torch.no_grad()
def teacher_targets(teacher, ids: torch.Tensor, k: int, batch_size: int, autocast: torch.dtype | None,
                    device: torch.device, splits: SplitHeads | None = None) -> TopKTargets:
    """Top-``k`` targets of ``teacher`` (a recover_train.Student) for every row of ``ids`` [R, T],
    in batches of ``batch_size`` rows; kept on the CPU (R x (T-1) x (12 k + 4) bytes). With ``splits``
    (``teacher_splits``) the logits are split_gemm's, the teacher's head packed once for every call."""
    head = teacher.head
    out_idx, out_logp, out_tail = [], [], []
    work = None  # two [chunk, vocab] float32 buffers, sized by the first (largest) batch, reused by every chunk
    split = tiles = None  # the teacher's packed head and split_mm's buffer, with the first batch
    for i in range(0, ids.shape[0], batch_size):
        batch = ids[i:i + batch_size].to(device)
        ctx = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
        with ctx:
            h = teacher.hidden(batch)[:, :-1]
        rows, positions = h.shape[0], h.shape[1]
        h, table = split_head(head, h.reshape(rows * positions, -1))
        w, b = table.weight.detach(), None if table.bias is None else table.bias.detach()
        if work is None:
            work = torch.empty((2, min(DEFAULT_CHUNK, h.shape[0]), w.shape[0]), dtype=torch.float32, device=h.device)
            if splits is not None:
                split, tiles = splits.get(w), splits.work(work.shape[1], h.shape[1], h.device)
        parts = []
        for j in range(0, h.shape[0], DEFAULT_CHUNK):
            m = min(DEFAULT_CHUNK, h.shape[0] - j)
            logits = head_logits(h[j:j + m], w, b, out=work[0, :m], split=split, work=tiles)
            parts.append(topk_of_logits(logits, k, scratch=work[1, :m]))
        out_idx.append(torch.cat([p[0] for p in parts]).reshape(rows, positions, k).cpu())
        out_logp.append(torch.cat([p[1] for p in parts]).reshape(rows, positions, k).cpu())
        out_tail.append(torch.cat([p[2] for p in parts]).reshape(rows, positions).cpu())
    return TopKTargets(torch.cat(out_idx), torch.cat(out_logp), torch.cat(out_tail))


@contextlib.contextmanager
def parked(model: torch.nn.Module, device: torch.device):
    """Within the block ``model``'s parameters hold no memory where the teacher will run: on CUDA
    they are moved to the CPU; on the CPU each is written raw to a file in a private temporary
    folder of the system temp dir and released (they stay where that folder is on tmpfs or has no
    room for them: a log line says so). On exit every parameter is restored bit for bit, in place
    (the same Parameter objects, so tied weights stay tied), and the folder is deleted. Buffers stay
    where they are."""
    import logging
    import shutil
    import tempfile
    from pathlib import Path

    from andactl.models.layer_store import trim_heap

    params = dict(model.named_parameters(remove_duplicate=True))
    if device.type == "cuda":
        for p in params.values():
            p.data = p.data.to("cpu")
        try:
            yield
        finally:
            for p in params.values():
                p.data = p.data.to(device)
        return
    size = sum(p.numel() * p.element_size() for p in params.values())
    folder = Path(tempfile.gettempdir())
    why = ("it is in memory (tmpfs)" if _in_memory_fs(folder) else
           f"it has no room for {size / 1e9:.2f} GB" if shutil.disk_usage(folder).free < size + (1 << 30) else None)
    if why:
        logging.getLogger("andactl").info("recover: the student stays in memory while the teacher runs: %s %s",
                                          folder, why)
        yield
        return
    released = []  # (file, parameter, shape) of every parameter written and released so far
    with tempfile.TemporaryDirectory(prefix="andactl-park-") as tmp:
        try:
            for i, p in enumerate(params.values()):
                _raw(p.data).numpy().tofile(f"{tmp}/{i}")
                released.append((f"{tmp}/{i}", p, p.shape))
                p.data = torch.empty(0, dtype=p.dtype)
            trim_heap()
            yield
        finally:
            for path, p, shape in released:
                p.data = _restore(path, shape, p.dtype)


def _raw(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bytes as an integer tensor numpy can write (bf16 has no numpy dtype)."""
    t = t.detach().contiguous()
    return t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t


def _restore(path: str, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """The tensor written by ``_raw``, read into ordinary memory (not a mapping of the file)."""
    import numpy as np

    raw = torch.from_numpy(np.fromfile(path, dtype=_raw(torch.empty(0, dtype=dtype)).numpy().dtype))
    return raw.view(dtype).view(shape)


def _in_memory_fs(folder) -> bool:
    """True if ``folder`` is on tmpfs/ramfs (parking there would not free any memory)."""
    import os

    real = os.path.realpath(folder).rstrip("/") + "/"
    try:
        with open("/proc/mounts") as mounts:
            mounts = [line.split() for line in mounts]
    except OSError:
        return False
    inside = [(len(m[1]), m[2]) for m in mounts if real.startswith(m[1].rstrip("/") + "/")]
    return bool(inside) and max(inside)[1] in ("tmpfs", "ramfs")  # the deepest mount holding it
