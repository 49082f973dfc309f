"""Sampling text from a model (andactl.data.model_text): the inverse-CDF draw and the batch rows."""
import math

import pytest
import torch

from andactl.data.model_text import (SAMPLE_BATCH, SAMPLE_CACHE_BYTES, SAMPLE_MAX_ROWS, draw_tokens,
                                     model_sampling_rows, sampling_rows)


def _reference_draws(probs: torch.Tensor, seed: int) -> list[int]:
    """Inverse CDF by a Python loop: the same uniforms (one float64 per row from a generator seeded
    ``seed``) scaled by the row's sum, then the first index whose running sum exceeds it."""
    u = torch.rand(probs.shape[0], 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = []
    for row, ur in zip(probs.double().tolist(), u[:, 0].tolist()):
        sums = [0.0]
        for p in row:
            sums.append(sums[-1] + p)
        target = min(ur * sums[-1], math.nextafter(sums[-1], 0.0))
        out.append(next(i for i, s in enumerate(sums[1:]) if s > target))
    return out


def test_draw_tokens_inverts_the_cumulative_sum():
    probs = torch.softmax(torch.randn(64, 300, generator=torch.Generator().manual_seed(0)) * 3, -1)
    probs[:, ::7] = 0.0  # unnormalised rows with zero entries
    got = draw_tokens(probs, torch.Generator().manual_seed(11))
    assert got.shape == (64, 1) and got.dtype == torch.int64
    assert got[:, 0].tolist() == _reference_draws(probs, 11)
    assert torch.equal(got, draw_tokens(probs, torch.Generator().manual_seed(11)))  # seeded


def test_draw_tokens_follows_the_distribution_and_never_draws_a_zero():
    p = torch.tensor([0.5, 0.0, 0.2, 0.3, 0.0, 1e-3])
    n = 200_000
    got = draw_tokens(p.expand(n, -1).contiguous(), torch.Generator().manual_seed(3))[:, 0]
    counts = torch.bincount(got, minlength=6).double()
    assert counts[1] == 0 and counts[4] == 0
    expected = p.double() / p.sum() * n
    sigma = (expected * (1 - expected / n)).sqrt()
    assert ((counts - expected).abs() <= 5 * sigma + 1e-9).all(), (counts, expected)
    edge = torch.tensor([[0.0, 0.0, 1.0, 0.0]]).expand(1000, -1).contiguous()  # one positive entry
    assert (draw_tokens(edge, torch.Generator().manual_seed(0)) == 2).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0])
def test_draw_tokens_refuses_a_row_without_a_finite_positive_sum(bad):
    from andactl.errors import NumericsError

    probs = torch.full((3, 4), 0.25)
    probs[1] = bad
    with pytest.raises(NumericsError, match="not finite and positive"):
        draw_tokens(probs, torch.Generator().manual_seed(0))


def test_sampling_rows_fill_the_cache_budget_within_bounds():
    per_row = 2 * 30 * 192 * 4 * 256  # SmolLM2-135M: 30 layers, 3 x 64 KV width, float32, 256 tokens
    assert sampling_rows(30, 192, 4, 256, 10_000) == min(SAMPLE_MAX_ROWS, SAMPLE_CACHE_BYTES // per_row) == 64
    assert sampling_rows(30, 192, 4, 2048, 10_000) == SAMPLE_BATCH  # 11 rows would fit: never fewer than 16
    assert sampling_rows(30, 192, 4, 256, 9) == 9  # never more than asked for
    big = 2 * 32 * 4096 * 4 * 512  # a 7B-shaped model at 512 tokens: 268 MB per row
    assert SAMPLE_CACHE_BYTES // big < SAMPLE_BATCH and sampling_rows(32, 4096, 4, 512, 100) == SAMPLE_BATCH


def test_model_sampling_rows_reads_the_config_and_dtype():
    from tiny_models import tiny_model

    model, _ = tiny_model("llama")
    cfg = model.config
    width = cfg.num_key_value_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    assert model_sampling_rows(model, 12, 5) == sampling_rows(cfg.num_hidden_layers, width, 4, 12, 5) == 5
    assert model_sampling_rows(model, 12, 1000) == SAMPLE_MAX_ROWS  # a tiny model's cache is small


@pytest.mark.parametrize("count", [3, 70])
def test_self_text_samples_with_model_sampling_rows(count, caplog):
    import logging

    from tiny_models import tiny_model

    from andactl.data.model_text import sample_from_model
    from andactl.passes.recover_data import self_text

    model, _ = tiny_model("llama")
    with caplog.at_level(logging.INFO, logger="andactl"):
        text = self_text(model, 100, count - 2, 2, 12, seed=5)
    rows = model_sampling_rows(model, 12, count)
    assert torch.equal(torch.cat([text.train, text.held_out]), sample_from_model(model, 100, count, 12, 5, rows))
    assert f"sampled {count} sequences of 12 tokens from the teacher in" in caplog.text
    assert f"{rows} at a time" in caplog.text


def _small_alpaca(tmp_path, n: int = 20):
    import json

    (tmp_path / "alpaca").mkdir()
    rows = [{"instruction": f"Say word {i} often.", "input": "", "output": f"word{i} " * 12} for i in range(n)]
    (tmp_path / "alpaca" / "alpaca_data.json").write_text(json.dumps(rows))
    return tmp_path


@pytest.mark.parametrize("train", [7, 40])  # 40: the dataset's half is repeated in epochs
def test_mixed_text_is_half_dataset_then_half_sampled(tmp_path, train):
    """recover ``--train-data mix``: the first n // 2 training and held-out rows are alpaca's as
    dataset_text draws them, the rest the teacher's samples as self_text draws them; distinct rows
    first, then the dataset's repeats, so unique_rows/order index every training row."""
    from tiny_models import tiny_model
    from tiny_tokenizer import char_tokenizer

    from andactl.passes.recover_data import dataset_text, mixed_text, self_text

    model, _ = tiny_model("llama")
    data_dir, tok = _small_alpaca(tmp_path), char_tokenizer()
    text = mixed_text(model, 98, tok, train, 3, 200, 5, data_dir)
    data = dataset_text("alpaca", tok, train // 2, 1, 200, 5, data_dir)
    own = self_text(model, 98, train - train // 2, 2, 200, 5)
    assert text.source == "mix" and text.train.shape == (train, 200)
    assert torch.equal(text.held_out, torch.cat([data.held_out, own.held_out]))
    unique, order = text.unique_rows()
    d = data.distinct
    assert torch.equal(unique, torch.cat([data.train[:d], own.train]))
    assert sorted(text.train[:, 0].tolist()) == sorted(torch.cat([data.train, own.train])[:, 0].tolist())
    if order is None:
        assert train == 7 and d == train // 2
    else:
        assert d < train // 2 and torch.equal(order[:d + own.train.shape[0]], torch.arange(d + own.train.shape[0]))
        assert torch.equal(unique[order], text.train) and text.to_dict()["distinct_sequences"] == unique.shape[0]


def test_recover_mix_refuses_one_training_sequence():
    from andactl.errors import ConfigError
    from andactl.passes.recover import RecoverConfig

    with pytest.raises(ConfigError, match="mix needs at least 2 training sequences"):
        RecoverConfig(train_data="mix", steps=1, batch_size=1).validate()
    RecoverConfig(train_data="mix", steps=1, batch_size=2).validate()


def test_mix_checks_its_dataset_before_loading(tmp_path):
    from andactl.errors import DataError
    from andactl.passes.recover_data import check_available, parse_train_data

    assert parse_train_data("mix") == ("mix", "")
    with pytest.raises(DataError, match="alpaca"):
        check_available("mix", tmp_path)  # an empty data directory: alpaca's training file is missing
    check_available("mix", _small_alpaca(tmp_path))
