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
    at the run dtype's ``element_size``, and one window's float32 log-softmax inside the
    cross-entropy (``window_losses`` takes the loss window by window). A run holds more (the
    activations, the allocator's slack), so a batch this bound does not fit in could never run."""
    return windows * seqlen * vocab * element_size + seqlen * vocab * 4


def window_losses(model, ids: torch.Tensor, seqlen: int, batch_size: int = 1, limit: int | None = None,
                  device: torch.device | str = "cpu", advance: Callable[[int], None] | None = None) -> list[float]:
    """Mean next-token cross-entropy (float32) of each non-overlapping ``seqlen`` window of ``ids``."""
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
            for row in range(batch.shape[0]):  # one window's float32 temporaries at a time, not the batch's
                if not torch.isfinite(logits[row]).all():
                    raise NumericsError(f"the model's logits contain NaN or Inf (window {i + row + 1} of {n}): no "
                                        "perplexity; its weights or activations overflow in this dtype (try --dtype float32)")
                loss = F.cross_entropy(logits[row, :-1, :].float(), batch[row, 1:], reduction="none")
                losses.append(loss.mean().item())
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
