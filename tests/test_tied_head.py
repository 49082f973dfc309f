"""One table for the head and the token embedding of a sliced tied model (andactl/models/tied_head.py):
exact against SliceGPT's untied head, smaller by V x d - D x head_in, saved and read back bit for bit,
quantized once, trained through."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from tiny_models import tiny_calibration, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

import andactl.passes.slice as slice_pass
from andactl.cli.main import cli
from andactl.context import PassContext
from andactl.formats.artifact import save_artifact
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter
from andactl.models.artifact_loader import load_artifact
from andactl.models.quantized_tables import QuantizedHead
from andactl.models.stats import count_parameters
from andactl.models.tied_head import (PrefixEmbedding, TiedHead, fit_tied_head, fold_mean_column, residual_column,
                                      tie_head)
from andactl.passes.recover_loss import head_loss, reference_head_loss

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SLICE = [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}]
V, D, d = 128, 64, 48  # tiny vocabulary, hidden size, width kept at 25%


def _sliced(family="llama", dtype=torch.float64, steps=(), one_table=True, monkeypatch=None):
    model, _ = tiny_model(family, dtype)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=32)
    if not one_table:
        monkeypatch.setattr(slice_pass, "one_table", lambda ctx: False)
    PassManager.from_recipe(SLICE + list(steps)).run(ctx)
    return ctx


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(tiny_inputs()).logits


@pytest.mark.parametrize("family", ["llama", "qwen3", "opt"])
def test_one_table_equals_the_untied_slice_and_is_smaller(family, monkeypatch):
    """The embedding is the untied slice's bit for bit. On a LayerNorm source (opt) the map has a bias
    (the final norm's shift): smaller by V x d + V - D x D - D there (the untied head's bias gone)."""
    tied = _sliced(family)
    head, emb = tied.model.get_output_embeddings(), tied.model.get_input_embeddings()
    assert isinstance(head, TiedHead) and isinstance(emb, PrefixEmbedding)
    assert tied.records.slicing.tied_head and tied.records.norms.tied_source
    untied = _sliced(family, one_table=False, monkeypatch=monkeypatch)
    assert not isinstance(untied.model.get_output_embeddings(), TiedHead)
    assert not untied.records.slicing.tied_head
    assert (_logits(tied.model) - _logits(untied.model)).abs().max().item() < 1e-10
    ids = tiny_inputs()
    with torch.no_grad():
        assert torch.equal(emb(ids), head.table.weight[ids][..., :d])
        assert torch.equal(emb(ids), untied.model.get_input_embeddings()(ids))
    saved = V * d + V - D * D - D if family == "opt" else V * d - D * D  # head_in = D
    assert count_parameters(untied.model) - count_parameters(tied.model) == saved
    assert head.table.weight.shape == (V, D)
    assert head.pre.weight.abs().max().item() < 4  # the map is as well conditioned as a rotation


@pytest.mark.parametrize("family", ["llama", "opt"])
def test_one_table_in_bfloat16_keeps_a_well_conditioned_map(family, monkeypatch):
    """Sliced in bfloat16 (the centred OPT table's unused direction is rounding noise there, not zero,
    and off the cut columns by ~1e-5) one table is still kept, its map bounded like a rotation, and
    the logits equal the untied slice's to bfloat16 rounding."""
    tied = _sliced(family, torch.bfloat16)
    head = tied.model.get_output_embeddings()
    assert isinstance(head, TiedHead) and head.pre.weight.abs().max().item() < 4
    untied = _sliced(family, torch.bfloat16, one_table=False, monkeypatch=monkeypatch)
    assert (_logits(tied.model).float() - _logits(untied.model).float()).abs().max().item() <= 2 ** -5


def test_fit_refuses_a_head_that_is_not_the_table_behind_a_map():
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(V, D, generator=gen, dtype=torch.float64)
    P = torch.randn(D, D, generator=gen, dtype=torch.float64)
    got, _, residual = fit_tied_head(table, table @ P, None)
    assert residual < 1e-12 and torch.allclose(got, P, atol=1e-9)
    _, _, residual = fit_tied_head(table, torch.randn(V, D, generator=gen, dtype=torch.float64), None)
    assert residual > 0.5
    model, _ = tiny_model("qwen2", torch.float64)  # untied source: nothing changes
    head = model.get_output_embeddings()
    assert tie_head(model, D, d) is None and model.get_output_embeddings() is head
    assert tie_head(model, D, d, centred=True) is None and model.get_output_embeddings() is head


def test_the_mean_column_is_what_a_layernorm_source_needs():
    """A fused, rotated OPT's head is the centred table behind a map plus a rank-one term: no map fits
    the table alone; ``residual_column`` is the centred-away row means (up to scale and what the
    table expresses); folded into the cut columns along the table's unused direction the fit is
    exact and the kept columns are untouched. Refused when the cut keeps every column."""
    model, _ = tiny_model("opt", torch.float64)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=32)
    PassManager.from_recipe(SLICE[:2]).run(ctx)  # fused and rotated, not cut
    table, head = model.get_input_embeddings().weight, model.get_output_embeddings()
    _, _, alone = fit_tied_head(table, head.weight, head.bias)
    assert alone > 1e-3
    col, n = residual_column(table, head.weight, head.bias)
    source, _ = tiny_model("opt", torch.float64)
    means = source.get_input_embeddings().weight.mean(dim=1)
    for extra in (col, means):
        _, _, joined = fit_tied_head(torch.cat([table, extra[:, None]], 1), head.weight, head.bias)
        assert joined < 1e-10
    folded = fold_mean_column(table, col, n, d)
    assert torch.equal(folded[:, :d], table[:, :d]) and not torch.equal(folded, table)
    _, _, residual = fit_tied_head(folded, head.weight, head.bias)
    assert residual < 1e-10
    assert fold_mean_column(table, col, n, D) is None


@pytest.mark.parametrize("family", ["llama", "opt"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_artifact_stores_one_table_and_reads_back_equal(tmp_path, dtype, family):
    ctx = _sliced(family, dtype=dtype)
    out = save_artifact(tmp_path / "a", ctx.model, char_tokenizer(), {"base_model": "tiny"}, records=ctx.records,
                        storage_dtype="fp32" if dtype == torch.float32 else None)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert {"lm_head.pre.weight", "lm_head.table.weight"} <= names
    assert not any("embed_tokens" in n for n in names) and "lm_head.weight" not in names
    loaded, _, meta = load_artifact(out, dtype)
    assert meta["records"].slicing.tied_head
    assert torch.equal(_logits(loaded), _logits(ctx.model))
    res = CliRunner().invoke(cli, ["inspect", str(out), "--format", "json"])
    info = json.loads(res.stdout)
    others = get_adapter(ctx.model).embeddings()[1:]  # opt's positions stay an embedding of their own
    assert info["one_table"] is True
    other_bytes = sum(e.weight.numel() * e.weight.element_size() for e in others)
    assert info["storage"]["by_category"]["embeddings"] == other_bytes
    assert (len(others) == 1) == (family == "opt")
    assert info["parameters"] == count_parameters(ctx.model) == count_parameters(loaded)
    human = CliRunner().invoke(cli, ["inspect", str(out)], env={"COLUMNS": "200"})
    assert f"head and token embedding: one table (hidden {D}; the embedding reads its first {d} columns" in human.stdout


@pytest.mark.parametrize("head,emb,one", [("int8", "int8", True), ("int4", "int4", True), ("int8", "none", False),
                                          ("none", "int8", False), ("int4", "int8", False)])
@pytest.mark.parametrize("family", ["llama", "opt"])
def test_quantized_tables_of_one_table(tmp_path, head, emb, one, family):
    """Every --head/--embeddings combination reads back bit for bit (llama, and opt with its folded
    mean column)."""
    ctx = _sliced(family, dtype=torch.float32, steps=[{"pass": "quantize_tables", "head": head, "embeddings": emb}])
    rec = ctx.records.tables
    assert rec.one_table == one
    model = ctx.model
    if one:  # the embedding reads the quantized table's prefix: no second copy
        table = model.get_output_embeddings().table
        assert isinstance(table, QuantizedHead) and isinstance(model.get_input_embeddings(), PrefixEmbedding)
        ids = tiny_inputs()
        with torch.no_grad():
            assert torch.equal(model.get_input_embeddings()(ids), table.dequantized()[ids][..., :d])
    else:
        assert not isinstance(model.get_input_embeddings(), PrefixEmbedding)
        assert (rec.float_embedding is not None) == (emb == "none")
    out = save_artifact(tmp_path / "q", model, char_tokenizer(), {"base_model": "tiny"}, records=ctx.records,
                        storage_dtype="fp32")
    loaded, _, _ = load_artifact(out, torch.float32)
    assert torch.equal(_logits(loaded), _logits(model))


@pytest.mark.parametrize("family", ["llama", "opt"])
def test_one_table_by_gptq_fits_the_maps_outputs(family):
    """The GPTQ table method quantizes the one table against its inputs (the map's outputs): close
    to the float model, and not the round-to-nearest codes."""
    rtn = _sliced(family, dtype=torch.float32, steps=[{"pass": "quantize_tables", "method": "rtn"}])
    gptq = _sliced(family, dtype=torch.float32, steps=[{"pass": "quantize_tables", "method": "gptq"}])
    dense = _logits(_sliced(family, dtype=torch.float32).model)
    tables = [c.model.get_output_embeddings().table for c in (rtn, gptq)]
    assert gptq.records.tables.one_table and all(isinstance(t, QuantizedHead) for t in tables)
    assert not torch.equal(tables[0].weight_packed, tables[1].weight_packed)
    for c in (rtn, gptq):
        assert 0 < (_logits(c.model) - dense).abs().max().item() < 0.5


@pytest.mark.parametrize("family", ["llama", "opt"])
def test_head_loss_through_a_tied_head_equals_plain_autograd(family):
    ctx = _sliced(family, dtype=torch.float32)
    head = ctx.model.get_output_embeddings()
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(20, D, generator=gen, requires_grad=True)
    h_t = torch.randn(20, D, generator=gen)
    labels = torch.randint(0, V, (20,), generator=gen)
    got = head_loss(h, head, labels, h_t, head, kd_weight=1.0, ce_weight=0.5, chunk=7)
    (g_got,) = torch.autograd.grad(got, h)
    want = reference_head_loss(h, head, labels, h_t, head, kd_weight=1.0, ce_weight=0.5)
    (g_want,) = torch.autograd.grad(want, h)
    assert abs(got.item() - want.item()) < 1e-5 and torch.allclose(g_got, g_want, atol=1e-6)


def test_opt_one_table_through_the_whole_chain(data_dir, tmp_path):
    """A tied LayerNorm source (tiny OPT) through slice -> recover (KD from its source) -> INT4 +
    Anda -> INT8 table via the CLI: recovery lowers the held-out KL through the biased map, and the
    packed artifact keeps one quantized table (hidden wide) and reads back equal to itself."""
    model, _ = tiny_model("opt", torch.float32)
    src = tmp_path / "opt"
    model.save_pretrained(str(src))
    char_tokenizer().save_pretrained(str(src))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {src}\ncalibration: {{dataset: ptb, split: validation, samples: 4, seqlen: 64, batch_size: 2}}\n"
        "passes:\n  - pass: fuse_norms\n  - pass: rotate\n    ratio: 0.25\n  - pass: slice\n"
        "  - pass: recover\n    steps: 6\n    lr: 0.01\n    seqlen: 32\n    batch_size: 2\n    held_out: 2\n"
        "  - pass: quantize_weights\n    method: rtn\n    group_size: 64\n"
        "  - pass: set_anda_bits\n    bits: [8, 8, 8, 8]\n  - pass: pack\n  - pass: quantize_tables\n")
    res = CliRunner().invoke(cli, ["run", str(recipe), "-o", str(tmp_path / "out"), "--data-dir", str(data_dir),
                                   "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    passes = json.loads(res.stdout)["passes"]
    assert passes[2]["result"]["tied_head"]
    rec = passes[3]["result"]
    assert rec["held_out_after"] < rec["held_out_before"]
    loaded, _, meta = load_artifact(tmp_path / "out", torch.float32)
    head = loaded.get_output_embeddings()
    assert isinstance(head, TiedHead) and isinstance(head.table, QuantizedHead) and head.table.in_features == D
    assert meta["records"].tables.one_table and meta["records"].slicing.tied_head
    again, _, _ = load_artifact(tmp_path / "out", torch.float32)
    assert torch.isfinite(_logits(loaded)).all() and torch.equal(_logits(loaded), _logits(again))
