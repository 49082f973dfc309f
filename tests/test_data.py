"""Datasets resolve locally with clear errors; calibration sampling is SliceGPT's and seeded."""
from __future__ import annotations

import re

import pytest
import torch
from tiny_tokenizer import char_tokenizer

from andactl.data.calibration import CalibrationConfig, build_calibration, sample_token_runs
from andactl.data.datasets import load_text_rows
from andactl.errors import ConfigError, DataError


def test_wikitext_rows_match_hf_layout(data_dir):
    rows = load_text_rows("wikitext2", "test", data_dir)
    assert len(rows) == 4358 and sum(1 for r in rows if r == "") == 1467
    assert rows[1] == " = Robert Boulter = \n"
    assert sum(len(r.encode()) for r in rows) == 1287656  # HF split num_bytes minus 4 per row


def test_alpaca_rows_use_the_alpaca_template(data_dir):
    rows = load_text_rows("alpaca", "train", data_dir)
    assert len(rows) == 2000
    assert rows[0].startswith("Below is an instruction that describes a task.")
    assert "### Response:\nDeep in the forest" in rows[0]


def test_missing_split_names_directory_contents(data_dir):
    with pytest.raises(DataError, match=r"wikitext2/train: none of wikitext2/wiki.train.raw .*holds: wiki.test.raw"):
        load_text_rows("wikitext2", "train", data_dir)


def test_unknown_dataset_and_split(data_dir):
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_text_rows("imagenet", "train", data_dir)
    with pytest.raises(DataError, match="has no split 'dev'"):
        load_text_rows("ptb", "dev", data_dir)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="data directory not found"):
        load_text_rows("ptb", "test", tmp_path / "nope")


ROWS = [f"row {i} " + "x" * (i % 7) for i in range(200)]


def test_sampler_is_deterministic_and_exact_length():
    tok = char_tokenizer()
    a = sample_token_runs(ROWS, tok, samples=5, seqlen=40, seed=3)
    b = sample_token_runs(ROWS, tok, samples=5, seqlen=40, seed=3)
    c = sample_token_runs(ROWS, tok, samples=5, seqlen=40, seed=4)
    assert a == b and a != c
    assert len(a) == 5 and all(len(r) == 40 for r in a)


def test_sampler_joins_consecutive_rows():
    tok = char_tokenizer()
    (run,) = sample_token_runs(ROWS, tok, samples=1, seqlen=60, seed=0)
    text = tok.decode(run)
    start = int(text.split()[1])
    expected = "\n\n".join(ROWS[start:start + 10])[:60]
    assert text == expected


def test_build_calibration_shapes(data_dir):
    cal = build_calibration(CalibrationConfig(dataset="ptb", split="validation", samples=6, seqlen=64, batch_size=4),
                            char_tokenizer(), data_dir)
    assert cal.input_ids.shape == (6, 64) and cal.num_tokens == 6 * 64
    assert [b["input_ids"].shape[0] for b in cal.batches()] == [4, 2]
    assert torch.equal(cal.attention_mask, torch.ones(6, 64, dtype=torch.long))


def test_calibration_too_little_text(tmp_path):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.test.txt").write_text("short\n")
    with pytest.raises(DataError, match="too little text"):
        build_calibration(CalibrationConfig(dataset="ptb", split="test", samples=2, seqlen=500), char_tokenizer(), tmp_path)


def test_calibration_config_validation():
    with pytest.raises(ConfigError, match="samples must be >= 1"):
        CalibrationConfig(samples=0).validate()


def test_self_calibration_is_sampled_from_the_model():
    from tiny_models import tiny_model

    from andactl.data.model_text import model_vocab, sample_from_model

    model, _ = tiny_model("llama")
    tok = char_tokenizer()
    cfg = CalibrationConfig(dataset="self", samples=3, seqlen=12, batch_size=2, seed=5)
    cal = build_calibration(cfg, tok, None, model=model)
    vocab = model_vocab(model, tok)
    assert vocab == min(len(tok), model.config.vocab_size)
    assert torch.equal(cal.input_ids, sample_from_model(model, vocab, 3, 12, seed=5, batch_size=2))
    assert int(cal.input_ids.max()) < vocab and torch.equal(cal.attention_mask, torch.ones(3, 12, dtype=torch.long))
    assert [b["input_ids"].shape[0] for b in cal.batches()] == [2, 1]
    with pytest.raises(ConfigError, match="sampled from the model"):
        build_calibration(cfg, tok, None)


def test_mix_calibration_is_half_alpaca_then_half_self(data_dir):
    """``--cal-data mix``: the first samples // 2 sequences are alpaca's for that many samples, the
    rest are the model's own samples for the remaining count (same seed); a model is required."""
    from tiny_models import tiny_model

    from andactl.data.model_text import model_vocab, sample_from_model

    model, _ = tiny_model("llama")
    tok = char_tokenizer()
    cfg = CalibrationConfig(dataset="mix", samples=5, seqlen=12, batch_size=2, seed=5)
    cal = build_calibration(cfg, tok, data_dir, model=model)
    alpaca = build_calibration(CalibrationConfig(dataset="alpaca", samples=2, seqlen=12, batch_size=2, seed=5), tok,
                               data_dir)
    assert cal.input_ids.shape == (5, 12) and torch.equal(cal.input_ids[:2], alpaca.input_ids)
    assert torch.equal(cal.input_ids[2:], sample_from_model(model, model_vocab(model, tok), 3, 12, seed=5, batch_size=2))
    assert torch.equal(cal.attention_mask, torch.ones(5, 12, dtype=torch.long))
    with pytest.raises(ConfigError, match="'mix' is sampled from the model"):
        build_calibration(cfg, tok, data_dir)


@pytest.mark.parametrize("dataset", ["self", "mix"])
def test_model_sampled_calibration_refuses_streaming(tiny_hf_dir, tmp_path, dataset):
    """Calibration text sampled from the model needs the whole model: --stream is refused before loading."""
    from click.testing import CliRunner

    from andactl.cli.main import cli

    res = CliRunner().invoke(cli, ["slice", str(tiny_hf_dir), "--ratio", "0.25", "--cal-data", dataset, "--cal-seqlen", "16",
                                   "--stream", "-o", str(tmp_path / "streamed")], catch_exceptions=False)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code != 0 and len(lines) == 1, res.stderr
    assert f"calibration data '{dataset}' samples text" in lines[0] and "layer-wise streaming" in lines[0]
    assert not (tmp_path / "streamed").exists()


@pytest.mark.parametrize("dataset", ["self", "mix"])
def test_slice_calibrated_on_model_text_samples_the_original_model(tiny_hf_dir, tmp_path, dataset, request):
    """``--cal-data self`` needs no data file, samples from the model before any pass changed it,
    and is recorded in the artifact's provenance; ``mix`` takes its model half the same way."""
    import json

    from andactl.data.model_text import model_vocab, sample_from_model
    from andactl.models.loading import load_model
    from andactl.pipeline import RunOptions, run_recipe
    from andactl.recipe import Recipe

    data = request.getfixturevalue("data_dir") if dataset == "mix" else None
    cal = {"dataset": dataset, "samples": 3, "seqlen": 16, "batch_size": 2, "seed": 7}
    recipe = Recipe(passes=[{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}], calibration=cal)
    ctx, path, _ = run_recipe(recipe, RunOptions(model=str(tiny_hf_dir), output=str(tmp_path / "s"), quiet=True,
                                                 data_dir=data))
    original = load_model(str(tiny_hf_dir))
    own = 3 if dataset == "self" else 2  # mix: 1 alpaca sequence, then 2 sampled
    expected = sample_from_model(original.model, model_vocab(original.model, original.tokenizer), own, 16, seed=7,
                                 batch_size=2)
    assert torch.equal(ctx.calibration().input_ids[3 - own:], expected)
    meta = json.loads((path / "config.json").read_text())["andactl"]["provenance"]
    assert meta["calibration"]["dataset"] == dataset


@pytest.mark.parametrize("rel,content,reason", [
    ("wikitext2/wiki.test.raw", b"\xcd\xff binary", "UnicodeDecodeError"),
    ("alpaca/alpaca_data.json", b'[{"instruction": "cut', "JSONDecodeError"),
    ("alpaca/alpaca_data.json", b'[{"instruction": "no output field"}]', "KeyError"),
    ("ptb/ptb.valid.txt", b"\xff\xfe bad \x80\n", "UnicodeDecodeError"),
    ("c4/c4-validation.00000-of-00008.json.gz", b"not gzip at all", "BadGzipFile"),
])
def test_damaged_local_text_names_the_file(tmp_path, rel, content, reason):
    """A damaged or foreign data file (binary bytes, cut JSON, a record without its fields, a broken
    gzip) is a DataError naming the file (the WikiText-2 one was an internal-error line; the others
    named neither file nor dataset)."""
    from andactl.data.datasets import TEXT_DATASETS, load_text_rows

    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(content)
    dataset = rel.split("/")[0]
    split = next(s for s, files in TEXT_DATASETS[dataset].splits.items() if rel in files)
    with pytest.raises(DataError, match=rf"^{dataset}/{split}: {re.escape(str(tmp_path / rel))} cannot be read as "
                                        rf"{dataset} text \({reason}: .*\); replace it with an intact copy"):
        load_text_rows(dataset, split, tmp_path)
