"""Artifact I/O: round trip with identical logits, validation, atomic writes."""
from __future__ import annotations

import json
import os

import pytest
import torch
from tiny_models import FAMILIES, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.errors import ArtifactError, ConfigError
from andactl.formats.artifact import is_artifact, save_artifact
from andactl.models.artifact_loader import load_artifact


@pytest.mark.parametrize("family", FAMILIES)
def test_unmodified_round_trip_identical_logits(tmp_path, family):
    model, _ = tiny_model(family)
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), {"base_model": "tiny"}, recipe=[], report={"x": 1})
    assert is_artifact(out)
    assert sorted(p.name for p in out.iterdir()) >= ["config.json", "model.safetensors", "recipe.yaml", "report.json"]
    loaded, tok, meta = load_artifact(out)
    ids = tiny_inputs()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert meta["base_model"] == "tiny" and meta["format_version"] == 2
    assert tok("ab").input_ids == char_tokenizer()("ab").input_ids
    if model.config.tie_word_embeddings:
        assert loaded.lm_head.weight.data_ptr() == loaded.get_input_embeddings().weight.data_ptr()


def _saved(tmp_path):
    model, _ = tiny_model("llama")
    return save_artifact(tmp_path / "a", model, char_tokenizer(), {})


def test_version_mismatch(tmp_path):
    out = _saved(tmp_path)
    cfg = json.loads((out / "config.json").read_text())
    cfg["andactl"]["format_version"] = 99
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="format version 99; this andactl reads version 2"):
        load_artifact(out)


def test_foreign_quant_method(tmp_path):
    out = _saved(tmp_path)
    cfg = json.loads((out / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "compressed-tensors"}
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="quant_method must be 'andactl', got 'compressed-tensors'"):
        load_artifact(out)


def test_corrupt_safetensors(tmp_path):
    out = _saved(tmp_path)
    (out / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ArtifactError, match="corrupt or not a safetensors file"):
        load_artifact(out)


@pytest.mark.parametrize("change", [-1, 8])
def test_truncated_or_padded_safetensors(tmp_path, change):
    # an interrupted copy keeps a whole header: refused by length, before any tensor is read
    out = _saved(tmp_path)
    file = out / "model.safetensors"
    size = file.stat().st_size
    if change < 0:
        os.truncate(file, size + change)
    else:
        with open(file, "ab") as fh:
            fh.write(b"\0" * change)
    with pytest.raises(ArtifactError, match=f"truncated or padded: {size + change:,} bytes where its header needs {size:,}"):
        load_artifact(out)


def test_shape_mismatch_names_module(tmp_path):
    from safetensors.torch import load_file, save_file

    out = _saved(tmp_path)
    state = load_file(str(out / "model.safetensors"))
    key = "model.layers.1.self_attn.q_proj.weight"
    state[key] = state[key][:, :32].contiguous()
    save_file(state, str(out / "model.safetensors"))
    with pytest.raises(ArtifactError, match="module 'model.layers.1.self_attn.q_proj'.*\\[64, 32\\].*\\[64, 64\\]"):
        load_artifact(out)


def test_refuses_non_empty_output(tmp_path):
    model, _ = tiny_model("llama")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="is not empty and is not an andactl artifact"):
            save_artifact(tmp_path / "a", model, None, {}, overwrite=overwrite)
    assert (tmp_path / "a" / "keep.txt").read_text() == "mine"


def test_failed_write_leaves_nothing(tmp_path):
    class BadTokenizer:
        def save_pretrained(self, path):
            raise RuntimeError("disk full")

    model, _ = tiny_model("llama")
    with pytest.raises(RuntimeError, match="disk full"):
        save_artifact(tmp_path / "a", model, BadTokenizer(), {})
    assert list(tmp_path.iterdir()) == []


def test_streaming_safetensors_writer_round_trips_bit_exactly(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from andactl.formats.safetensors_stream import save_streaming

    gen = torch.Generator().manual_seed(0)
    tensors = {
        "bf16": torch.randn(3, 5, generator=gen).to(torch.bfloat16),
        "f64": torch.randn(7, generator=gen, dtype=torch.float64),
        "f16_t": torch.randn(4, 6, generator=gen).to(torch.float16).T,  # not contiguous
        "i8": torch.randint(-128, 127, (2, 2, 3), generator=gen, dtype=torch.int8),
        "u8": torch.randint(0, 255, (9,), generator=gen, dtype=torch.uint8),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "flag": torch.tensor([True, False]),
    }
    save_streaming(tensors, tmp_path / "m.safetensors", metadata={"producer": "andactl"})
    back = load_file(str(tmp_path / "m.safetensors"))
    assert back.keys() == tensors.keys()
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape and torch.equal(back[k], t), k
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as fh:
        assert fh.metadata() == {"producer": "andactl"}
