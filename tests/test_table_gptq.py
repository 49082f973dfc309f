"""GPTQ for the LM head table (``quantize_tables`` with ``method: gptq``, ``--table-method gptq``):
the codes lie on the table_quant grid, the head's output error on the calibration inputs is below
round-to-nearest's, a tied table keeps one shared set of codes, the artifact loads back to the
saved logits, and bad combinations fail with one line before any work."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from andactl.cli.main import cli
from andactl.errors import ConfigError
from andactl.formats import table_quant as tq
from andactl.passes.gptq import gptq_table
from andactl.passes.quantize_tables import QuantizeTablesConfig
from andactl.sweep.runner import SweepSettings


@pytest.mark.parametrize("bits,group", [(4, 64), (4, 32), (8, 64), (4, 48)])
def test_gptq_table_beats_rtn_on_its_inputs(bits, group):
    gen = torch.Generator().manual_seed(bits + group)
    k, n, tokens = 128, 300, 2000
    mix = torch.randn(k, k, generator=gen) / k ** 0.5 + torch.eye(k)  # correlated inputs, like hidden states
    x = torch.randn(tokens, k, generator=gen) @ mix
    w = torch.randn(n, k, generator=gen) * 0.1
    H = 2.0 / tokens * (x.double().T @ x.double())
    codes, scale, stats = gptq_table(w, H, bits, group)
    qmax = tq.QMAX[bits]
    assert codes.dtype == torch.int16 and int(codes.abs().max()) <= qmax
    assert scale.dtype == torch.float16 and scale.shape == (n, -(-k // group))
    w_gptq = tq.dequantize(tq.pack_codes(codes, bits), scale, bits, k, group)
    w_rtn = tq.dequantize(*tq.quantize(w, bits, group), bits, k, group)
    err = lambda wq: float((x @ (w - wq).T).pow(2).sum())  # noqa: E731
    assert err(w_gptq) < 0.8 * err(w_rtn), (err(w_gptq), err(w_rtn))
    assert stats["dead_columns"] == 0 and stats["proxy_loss"] > 0


def test_table_method_config_validation():
    QuantizeTablesConfig(method="gptq").validate()
    for kwargs, msg in (({"method": "awq"}, "unknown table method 'awq'"),
                        ({"method": "gptq", "head": "none"}, "needs --head int8 or int4"),
                        ({"method": "gptq", "clip": True}, "cannot be combined with clipping"),
                        ({"method": "gptq", "damp": 0.0}, "damp must be in")):
        with pytest.raises(ConfigError, match=msg):
            QuantizeTablesConfig(**kwargs).validate()


def test_sweep_settings_written_before_a_new_setting_still_match():
    s = SweepSettings(model="m", windows=2)
    old = s.to_dict()
    del old["table_method"]
    assert s.matches(old) and s.matches(s.to_dict())
    assert not SweepSettings(model="m", windows=2, table_method="gptq").matches(old)
    assert not s.matches({**old, "windows": 3}) and not s.matches(None)


def test_quantize_cli_table_gptq_tied_shared_and_loads(tiny_hf_dir, data_dir, tmp_path):
    from andactl import load

    cal = ["--cal-data", "ptb", "--cal-split", "validation", "--cal-samples", "4", "--cal-seqlen", "128", "--data-dir", data_dir]
    runner = CliRunner()
    outs = {}
    for method in ("rtn", "gptq"):
        out = tmp_path / method
        res = runner.invoke(cli, ["quantize", str(tiny_hf_dir), "--bits", "8", "8", "8", "8", "--weight-method", "rtn",
                                  "--group-size", "64", "--head", "int4", "--embeddings", "int4", "--table-method", method,
                                  "-o", str(out), *cal])
        assert res.exit_code == 0, res.stderr
        outs[method] = out
    report = json.loads((outs["gptq"] / "report.json").read_text())
    tables = [p for p in report["passes"] if p["pass"] == "quantize_tables"][0]["result"]
    assert tables["method"] == "gptq" and tables["shared"] is True and tables["gptq"]["calibration_tokens"] > 0
    model, _ = load(outs["gptq"])
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    assert head.weight_packed.data_ptr() == emb.weight_packed.data_ptr()  # one table, one set of codes
    rtn, _ = load(outs["rtn"])
    assert not torch.equal(emb.weight_packed, rtn.get_input_embeddings().weight_packed)
    res = runner.invoke(cli, ["quantize", str(tiny_hf_dir), "--head", "none", "--table-method", "gptq",
                              "-o", str(tmp_path / "bad"), *cal])
    assert res.exit_code == 2 and "needs --head int8 or int4" in res.stderr and not (tmp_path / "bad").exists()
    assert len(res.stderr.strip().splitlines()) == 1
    res = runner.invoke(cli, ["quantize", str(tiny_hf_dir), "--head", "int4", "--table-method", "gptq", "--stream",
                              "-o", str(tmp_path / "bad"), *cal])
    assert res.exit_code == 2 and "does not support layer-wise streaming" in res.stderr and not (tmp_path / "bad").exists()
