"""Compact storage: storage dtype round trip, INT8/INT4 head and embedding tables, byte accounting."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from tiny_models import tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.cli.main import cli
from andactl.context import PassContext
from andactl.errors import ConfigError
from andactl.formats import table_quant as tq
from andactl.formats.artifact import save_artifact
from andactl.formats.byte_accounting import account
from andactl.formats.storage import STORAGE_DTYPES, to_storage
from andactl.models.adapters import get_adapter
from andactl.models.artifact_loader import load_artifact
from andactl.models.quantized_tables import QuantizedEmbedding, QuantizedHead
from andactl.passes.quantize_tables import QuantizeTables, QuantizeTablesConfig

TOL = {"fp32": 0.0, "fp16": 2e-3, "bf16": 2e-2}  # max |logit diff| / max |logit|


@pytest.mark.parametrize("storage", list(STORAGE_DTYPES))
def test_storage_dtype_round_trip(tmp_path, storage):
    model, _ = tiny_model("qwen2")
    x = tiny_inputs()
    with torch.no_grad():
        ref = model(x).logits
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), {}, storage_dtype=storage)
    cfg = json.loads((out / "config.json").read_text())["andactl"]
    assert cfg["storage_dtype"] == storage and cfg["storage_fp32_tensors"] == []
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        dtypes = {fh.get_tensor(k).dtype for k in fh.keys()}
    assert dtypes == {STORAGE_DTYPES[storage]}
    loaded, _, _ = load_artifact(out, torch.float32)
    assert next(loaded.parameters()).dtype == torch.float32
    with torch.no_grad():
        got = loaded(x).logits
    err = float((got - ref).abs().max() / ref.abs().max())
    assert err <= TOL[storage] and (storage == "fp32" or err > 0)


def test_storage_keeps_overflowing_tensors_in_fp32():
    t = {"a": torch.tensor([1.0, 7e4]), "b": torch.tensor([1.0, 2.0]), "i": torch.tensor([1, 2], dtype=torch.uint8),
         "m.weight_scale": torch.tensor([0.1]), "h": torch.tensor([0.1], dtype=torch.float16)}
    out, kept = to_storage(t, "bf16")
    assert out["m.weight_scale"].dtype == torch.float32 and out["h"].dtype == torch.bfloat16  # scales keep their dtype
    out, kept = to_storage(t, "fp16")
    assert kept == ["a"] and out["a"].dtype == torch.float32 and torch.equal(out["a"], t["a"])
    assert out["b"].dtype == torch.float16 and out["i"].dtype == torch.uint8
    with pytest.raises(ConfigError, match="unknown storage dtype 'fp8'"):
        to_storage(t, "fp8")


@pytest.mark.parametrize("bits,rel", [(8, 0.01), (4, 0.15)])
def test_table_quant_error_bounds(bits, rel):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(200, 150, generator=gen) * torch.rand(200, 1, generator=gen)
    w[3] = 0.0
    packed, scale = tq.quantize(w, bits, 64)
    assert packed.dtype == torch.uint8 and scale.dtype == torch.float16 and scale.shape == (200, 3)
    assert packed.shape == (200, 150 if bits == 8 else 75)
    d = tq.dequantize(packed, scale, bits, 150, 64)
    per_col = scale.float().repeat_interleave(64, dim=1)[:, :150]
    assert torch.equal(d, tq.unpack_codes(packed, bits, 150).float() * per_col)  # one product per code
    bound = per_col / 2
    assert bool(((w - d).abs() <= bound).all())
    assert torch.equal(d[3], torch.zeros(150))
    g_amax = torch.nn.functional.pad(w.abs(), (0, 42)).view(200, 3, 64).amax(2)
    assert bool((scale.float() * tq.QMAX[bits] >= g_amax).all())  # never clips
    assert float((w - d).norm() / w.norm()) < rel
    assert torch.equal(tq.unpack_codes(tq.pack_codes(tq.unpack_codes(packed, bits, 150), bits), bits, 150),
                       tq.unpack_codes(packed, bits, 150))
    assert tq.stored_bytes(200, 150, bits, 64) == packed.numel() + 2 * scale.numel()


@pytest.mark.parametrize("bits", [8, 4])
def test_embedding_gather_equals_dense_lookup(bits):
    emb = torch.nn.Embedding(50, 70)
    q = QuantizedEmbedding.from_float(emb, bits, 64)
    ids = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(2))
    assert torch.equal(q(ids), q.dense_lookup(ids))
    assert torch.equal(q(ids), q.dequantized()[ids])
    assert q.to(torch.bfloat16)(ids).dtype == torch.bfloat16 and q.weight_packed.dtype == torch.uint8
    lin = torch.nn.Linear(70, 50, bias=True)
    h = QuantizedHead.from_float(lin, bits, 64)
    x = torch.randn(4, 70)
    w = tq.dequantize(h.weight_packed, h.weight_scale, bits, 70, 64)
    ref = torch.nn.functional.linear(x, w, lin.bias)
    bound = 1e-6 * (x.abs() @ w.abs().T + lin.bias.abs())  # the op's summation-order bound
    assert bool(((h(x) - ref).abs() <= bound).all())
    xg = x.clone().requires_grad_(True)
    h(xg).sum().backward()  # a gradient to x goes through the dequantized table
    assert torch.allclose(xg.grad, w.sum(0).expand(4, 70))


def test_bad_table_bits():
    with pytest.raises(ConfigError, match="unknown table quantization 'int2'"):
        QuantizeTablesConfig(head="int2").validate()


@pytest.mark.parametrize("head,emb,shared", [("int8", "int8", True), ("int4", "int8", False), ("none", "int4", False)])
def test_quantized_tables_artifact_round_trip(tmp_path, head, emb, shared):
    model, _ = tiny_model("llama")  # tied embeddings
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None)
    res = QuantizeTables(QuantizeTablesConfig(head=head, embeddings=emb)).run(ctx)
    assert res["shared"] is shared
    x = tiny_inputs()
    with torch.no_grad():
        ref = model(x).logits
    meta = {"structure": ctx.structure, "dense_parameters": 1}
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), meta, records=ctx.records, storage_dtype="fp32")
    loaded, _, _ = load_artifact(out, torch.float32)
    assert isinstance(loaded.get_input_embeddings(), QuantizedEmbedding)
    assert isinstance(loaded.get_output_embeddings(), QuantizedHead) == (head != "none")
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, ref)
    # loaded in bfloat16 (the run dtype on CPUs with native bf16), the tables output bfloat16: the
    # residual stream, attention and every layer run in it, not in the float32 of quantize time
    bf, _, _ = load_artifact(out, torch.bfloat16)
    seen = []
    bf.model.layers[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].dtype))
    with torch.no_grad():
        logits = bf(x).logits
    assert bf.get_input_embeddings()(x).dtype == torch.bfloat16 and seen == [torch.bfloat16]
    assert logits.dtype == torch.bfloat16
    acc = account(out)
    n_tables = tq.stored_bytes(128, 64, 8 if emb == "int8" else 4, 64)
    if not shared:
        n_tables += 128 * 64 * 4 if head == "none" else tq.stored_bytes(128, 64, 4, 64)
    assert acc["by_category"]["embeddings"] + acc["by_category"]["head"] == n_tables


def test_inspect_byte_accounting_equals_file_size(tiny_hf_dir, data_dir, tmp_path):
    cal = ["--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "4", "--cal-seqlen", "128", "--data-dir", data_dir]
    runner = CliRunner()
    res = runner.invoke(cli, ["slice", str(tiny_hf_dir), "--ratio", "0.25", "-o", str(tmp_path / "s"), *cal])
    assert res.exit_code == 0, res.stderr
    res = runner.invoke(cli, ["quantize", str(tmp_path / "s"), "--bits", "8", "8", "8", "8", "--weight-method", "rtn",
                              "--group-size", "64", "--head", "int4", "-o", str(tmp_path / "q"), *cal])
    assert res.exit_code == 0, res.stderr
    for art in ("s", "q"):
        info = json.loads(runner.invoke(cli, ["inspect", str(tmp_path / art), "--format", "json"]).stdout)
        st = info["storage"]
        size = (tmp_path / art / "model.safetensors").stat().st_size
        assert sum(st["by_category"].values()) == st["data_bytes"] == size - st["header_bytes"]
        assert 0 < size - st["data_bytes"] < 64 * 1024  # header only
        assert st["storage_dtype"] == "fp16" and st["ratios"]["vs_dense_fp16"] == round(size / st["references"]["dense_fp16"], 4)
        assert st["by_category"]["shortcuts"] == 2 * (3 * 48 * 48 + 48 * 64)  # fp16; the last output stays 64 wide
        assert info["stored_bytes"] == size and info["bytes"] > 0 and info["loaded_dtype"] == "float32"
        human = runner.invoke(cli, ["inspect", str(tmp_path / art)]).stdout
        assert f"stored {size / 2**20:.1f} MiB in model.safetensors, {info['bytes'] / 2**20:.1f} MiB loaded" in human
    # each packed module's bytes are the file's for its tensors: together, every block linear (all quantized)
    assert "model.layers.0.self_attn.q_proj" in human and "…" not in human  # piped: names never cut
    assert sum(r["bytes"] for r in info["quantized_modules"]) == st["by_category"]["block_linears"]
    assert info["compression_vs_fp16"] == round(st["references"]["dense_fp16"] / size, 3)
    # the tied source's sliced head: its INT4 table (the embedding split off as INT8) + the fp16 64 x 64 map
    assert st["by_category"]["head"] == tq.stored_bytes(128, 64, 4, 64) + 64 * 64 * 2
    assert st["by_category"]["embeddings"] == tq.stored_bytes(128, 48, 8, 64)
    res = runner.invoke(cli, ["slice", str(tiny_hf_dir), "--ratio", "0.25", "--slice-head", "-o", str(tmp_path / "h"), *cal])
    info = json.loads(runner.invoke(cli, ["inspect", str(tmp_path / "h"), "--format", "json"]).stdout)
    assert res.exit_code == 0 and info["layer_dims"][-1]["out"] == 48
    res = runner.invoke(cli, ["slice", str(tiny_hf_dir), "--ratio", "0.25", "--storage-dtype", "fp8", "-o", str(tmp_path / "x"), *cal])
    assert res.exit_code == 2 and "unknown storage dtype 'fp8'" in res.stderr and not (tmp_path / "x").exists()


def test_recipe_storage_dtype_key():
    from andactl.recipe import parse_recipe

    r = parse_recipe({"passes": [{"pass": "fuse_norms"}], "storage_dtype": "bf16"})
    assert r.storage_dtype == "bf16" and r.to_dict()["storage_dtype"] == "bf16"
    assert parse_recipe([{"pass": "fuse_norms"}]).storage_dtype is None
