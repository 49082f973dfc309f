"""Perplexity follows the GPTQ/SliceGPT convention, checked against a hand computation."""
from __future__ import annotations

import math

import pytest
import torch
from tiny_models import tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.errors import DataError
from andactl.evaluation.perplexity import perplexity, tokenize_corpus

ROWS = ["Hello world.\n", "", "The quick brown fox jumps over the lazy dog.\n", "Another line of text here.\n"] * 3


def _hand_ppl(model, ids, seqlen):
    """exp(mean over windows of mean token NLL), every step written out in float64."""
    n = ids.shape[1] // seqlen
    window_means = []
    for w in range(n):
        chunk = ids[:, w * seqlen:(w + 1) * seqlen]
        with torch.no_grad():
            logits = model(chunk).logits[0].double()
        nll = 0.0
        for t in range(seqlen - 1):
            logp = logits[t] - torch.logsumexp(logits[t], dim=0)
            nll -= float(logp[chunk[0, t + 1]])
        window_means.append(nll / (seqlen - 1))
    return math.exp(sum(window_means) / n), n


def test_matches_hand_computation():
    model, _ = tiny_model("llama")
    tok = char_tokenizer()
    ids = tokenize_corpus(ROWS, tok)
    assert ids.shape[1] == len("\n\n".join(ROWS))
    expected, n = _hand_ppl(model, ids, 32)
    res = perplexity(model, tok, ROWS, seqlen=32, batch_size=2)
    assert res.windows == n == ids.shape[1] // 32
    assert res.ppl == pytest.approx(expected, rel=1e-5)


def test_limit_caps_windows():
    model, _ = tiny_model("llama")
    res = perplexity(model, char_tokenizer(), ROWS, seqlen=32, limit=2)
    assert res.windows == 2 and res.total_windows > 2 and res.tokens == 64


def test_too_short_text():
    model, _ = tiny_model("llama")
    with pytest.raises(DataError, match="fewer than one window of 4096"):
        perplexity(model, char_tokenizer(), ROWS, seqlen=4096)
