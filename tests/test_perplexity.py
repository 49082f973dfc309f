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


def test_batched_windows_give_the_losses_of_single_windows_exactly():
    """window_losses takes the loss window by window (so a batch holds one window's float32
    temporaries, not the batch's): every batch size gives the same floats as batch 1."""
    from andactl.evaluation.perplexity import window_losses

    model, _ = tiny_model("llama")
    ids = tokenize_corpus(ROWS, char_tokenizer())
    single = window_losses(model, ids, 16, batch_size=1)
    for batch in (2, 3, len(single)):
        assert window_losses(model, ids, 16, batch_size=batch) == single


def test_a_batch_that_cannot_fit_is_refused_before_loading(tiny_hf_dir, monkeypatch):
    """--batch-size 32 at 2048 tokens on SmolLM2 needs 13 GB of logits alone: it was killed by the
    kernel after the model had loaded. Refused up front by perplexity.least_bytes, with a batch size
    that fits; a batch that fits the bound runs."""
    import re

    from cli_helpers import invoke_cli

    from andactl.evaluation.perplexity import least_bytes

    monkeypatch.setattr("andactl.dry_run.memory.available_bytes", lambda: 2_000_000.0)
    loaded = []

    def load_model(*args, **kwargs):
        loaded.append(args)
        raise RuntimeError("stopped at load")

    monkeypatch.setattr("andactl.models.loading.load_model", load_model)
    res = invoke_cli("eval", tiny_hf_dir, "--tasks", "wikitext2", "--seqlen", "128", "--batch-size", "64")
    assert res.exit_code == 2 and not loaded
    assert least_bytes(3, 128, 128, 2) - least_bytes(2, 128, 128, 2) == 128 * 128 * 2  # one window's logits
    match = re.fullmatch(rf"error: {re.escape(str(tiny_hf_dir))}: 64 perplexity windows of 128 tokens at once need at "
                         r"least ([\d.]+) GB \(logits ([\d.]+), model [\d.]+\), more than the 0\.0 GB available: use "
                         r"--batch-size (\d+) or less\n", res.stderr)
    assert match, res.stderr
    assert int(match[3]) < 64
    res = invoke_cli("eval", tiny_hf_dir, "--tasks", "wikitext2", "--seqlen", "128", "--batch-size", "64", "--limit", "1")
    assert loaded and "stopped at load" in res.stderr  # --limit 1: one window at once fits; the model loads


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_window_loss_in_position_blocks_equals_the_whole_window(monkeypatch, dtype):
    """A window's loss taken LOSS_POSITIONS positions at a time (so its float32 copy and
    log-softmax stay a block's: 0.8 GB less at 2048 x 49,152) equals the whole window's float32
    cross-entropy bit for bit; a NaN past the last predicting position is still refused."""
    from andactl.errors import NumericsError
    from andactl.evaluation import perplexity as ppl

    g = torch.Generator().manual_seed(5)
    logits = (4 * torch.randn(70, 33, generator=g)).to(dtype)
    ids = torch.randint(0, 33, (70,), generator=g)
    whole = torch.nn.functional.cross_entropy(logits[:-1].float(), ids[1:], reduction="none").mean().item()
    rows = []
    real = ppl.F.cross_entropy
    monkeypatch.setattr(ppl, "LOSS_POSITIONS", 16)
    monkeypatch.setattr(ppl.F, "cross_entropy", lambda x, *a, **k: rows.append(x.shape[0]) or real(x, *a, **k))
    assert ppl._window_loss(logits, ids, "window 1 of 1") == whole
    assert max(rows) == 16 and sum(rows) == 69
    logits[-1, 3] = float("nan")
    with pytest.raises(NumericsError, match="window 1 of 1"):
        ppl._window_loss(logits, ids, "window 1 of 1")


def test_a_window_of_one_token_is_refused():
    from andactl.evaluation.perplexity import window_losses

    model, _ = tiny_model("llama")
    with pytest.raises(DataError, match="at least 2 tokens, got 1"):
        window_losses(model, torch.arange(2, 40).unsqueeze(0), 1)
