"""Perplexity, GPTQ/SliceGPT convention: join the split's rows with "\\n\\n", tokenize once, cut
into non-overlapping windows of ``seqlen`` tokens (the tail shorter than a window is dropped),
ppl = exp(mean over windows of the window's mean next-token cross-entropy)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from andactl.errors import DataError, NumericsError

LOSS_POSITIONS = 256  # positions of one window whose float32 log-probabilities the loss builds at once


@dataclass
class PerplexityResult:
    ppl: float
    windows: int
    total_windows: int
    seqlen: int
    tokens: int
    seconds: float

    def to_dict(self) -> dict:
        return {"ppl": self.ppl, "windows": self.windows, "total_windows": self.total_windows,
                "seqlen": self.seqlen, "tokens": self.tokens, "seconds": round(self.seconds, 2)}


def tokenize_corpus(rows: list[str], tokenizer) -> torch.Tensor:
    """Token ids [1, T] of ``"\\n\\n".join(rows)``, tokenized once (tokenizer defaults)."""
    text = "\n\n".join(rows)
    return tokenizer(text, return_tensors="pt").input_ids


def least_bytes(windows: int, seqlen: int, vocab: int, element_size: int) -> int:
    """A lower bound on what one forward of ``windows`` windows holds beyond the model: their logits
    at the run dtype's ``element_size``, and the float32 log-softmax of LOSS_POSITIONS positions
    inside the cross-entropy (``position_losses``). A run holds more (the activations, the allocator's
    slack), so a batch this bound does not fit in could never run."""
    return windows * seqlen * vocab * element_size + min(seqlen, LOSS_POSITIONS) * vocab * 4


def position_losses(logits: torch.Tensor, targets: torch.Tensor, where: str | None = None) -> torch.Tensor:
    """Next-token cross-entropy per position (float32 [N]; 0 where the target is -100) of
    ``logits`` [N, V] against ``targets`` [N], from float32 log-probabilities built LOSS_POSITIONS
    positions at a time: per position the same values as all at once, whose float32 copy and
    log-softmax took two logits-sized tensors (0.8 GB at 2048 x 49,152) beside the logits (stop 63).
    With ``where``, NumericsError for a NaN or Inf in the logits."""
    pieces = []
    for start in range(0, logits.shape[0], LOSS_POSITIONS):
        part = logits[start : start + LOSS_POSITIONS]
        if where is not None:
            _check_finite(part, where)
        pieces.append(F.cross_entropy(part.float(), targets[start : start + LOSS_POSITIONS], reduction="none",
                                      ignore_index=-100))
    return torch.cat(pieces)


def _check_finite(logits: torch.Tensor, where: str) -> None:
    if not torch.isfinite(logits).all():
        raise NumericsError(f"the model's logits contain NaN or Inf ({where}): no perplexity; its weights or "
                            "activations overflow in this dtype (try --dtype float32)")


def _window_loss(logits: torch.Tensor, ids: torch.Tensor, where: str) -> float:
    """Mean next-token cross-entropy of one window's ``logits`` [T, V] against ``ids`` [T]
    (position_losses); NumericsError for a NaN or Inf anywhere in them, the last position's too."""
    _check_finite(logits[-1], where)  # it predicts nothing here, and is checked all the same
    return position_losses(logits[:-1], ids[1:], where).mean().item()


def window_losses(model, ids: torch.Tensor, seqlen: int, batch_size: int = 1, limit: int | None = None,
                  device: torch.device | str = "cpu", advance: Callable[[int], None] | None = None) -> list[float]:
    """Mean next-token cross-entropy (float32) of each non-overlapping ``seqlen`` window of ``ids``."""
    if seqlen < 2:
        raise DataError(f"a perplexity window needs at least 2 tokens, got {seqlen}")
    total = ids.shape[1] // seqlen
    n = total if limit is None else min(total, limit)
    if n == 0:
        raise DataError(f"text has {ids.shape[1]} tokens, fewer than one window of {seqlen}")
    windows = ids[0, : n * seqlen].view(n, seqlen)
    losses: list[float] = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            batch = windows[i : i + batch_size].to(device)
            logits = model(input_ids=batch, use_cache=False).logits
            for row in range(batch.shape[0]):
                losses.append(_window_loss(logits[row], batch[row], f"window {i + row + 1} of {n}"))
            del logits
            if advance:
                advance(batch.shape[0])
    return losses


def perplexity(model, tokenizer, rows: list[str], seqlen: int = 2048, batch_size: int = 1,
               limit: int | None = None, device: torch.device | str = "cpu",
               advance: Callable[[int], None] | None = None) -> PerplexityResult:
    """Perplexity of ``model`` on ``rows`` (see module docstring); ``limit`` caps the windows."""
    t0 = time.perf_counter()
    ids = tokenize_corpus(rows, tokenizer)
    losses = window_losses(model, ids, seqlen, batch_size, limit, device, advance)
    return PerplexityResult(
        ppl=math.exp(sum(losses) / len(losses)), windows=len(losses), total_windows=ids.shape[1] // seqlen,
        seqlen=seqlen, tokens=len(losses) * seqlen, seconds=time.perf_counter() - t0,
    )
