"""``andactl bench`` (JSON schema on a tiny model, one-line errors), ``--dtype auto`` and a packed
tiny model run in bf16 end to end (the fused op emits bf16) against float32."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from tiny_models import tiny_calibration, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.cli.main import cli
from andactl.evaluation.throughput import cpu_name
from andactl.kernels import attention
from andactl.models.loading import resolve_dtype_name

ROWS = ["The quick brown fox jumps over the lazy dog.\n", "Pack my box with five dozen liquor jugs.\n"] * 6
NUMBERS = ("prefill_tok_s", "decode_tok_s", "ttft_ms", "decode_ms_per_token", "slicegpt_tok_s", "peak_rss_mb")


def test_bench_json_schema_two_models(tiny_hf_dir):
    res = CliRunner().invoke(cli, ["bench", str(tiny_hf_dir), str(tiny_hf_dir), "--prompt-tokens", "12",
                                   "--gen-tokens", "3", "--batch", "1,2", "--threads", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["prompt_tokens"] == 12 and data["gen_tokens"] == 3 and data["batches"] == [1, 2]
    assert data["info"]["threads"] == 1 and "loadavg" in data["info"]
    assert data["info"]["cpu"] == cpu_name()  # named beside every figure
    rows = data["results"]
    from transformers import AutoModelForCausalLM

    from andactl.models.stats import count_parameters

    # logical weights, the tie counted once
    dense = count_parameters(AutoModelForCausalLM.from_pretrained(str(tiny_hf_dir)))
    assert [(r["batch"], r["model"]) for r in rows] == [(b, str(tiny_hf_dir)) for _ in range(2) for b in (1, 2)]
    for r in rows:
        assert r["dtype"] == resolve_dtype_name("auto")  # float32 here (AVX2), bfloat16 with AVX512-BF16/AMX
        assert r["prompt_tokens"] == 12 and r["gen_tokens"] == 3 and r["parameters"] == dense
        assert all(isinstance(r[k], float) and r[k] > 0 for k in NUMBERS), r
        assert r["ttft_ms"] == pytest.approx(1e3 * r["batch"] * 12 / r["prefill_tok_s"], rel=1e-2)
        assert r["decode_ms_per_token"] == pytest.approx(1e3 * r["batch"] / r["decode_tok_s"], rel=1e-2)
        assert set(r["vs_first"]) == {"prefill", "decode", "slicegpt"}
        assert r["attention"] == ("andactl_sdpa" if attention.vectorized(16) else "sdpa")  # head size 16
        assert r["decode_step"] == ("lean" if attention.vectorized(16) else "transformers")  # a llama
    assert all(v == 1.0 for r in rows[:2] for v in r["vs_first"].values())  # the first model is the baseline


def test_bench_attention_sdpa_keeps_torch_attention(tiny_hf_dir):
    res = CliRunner().invoke(cli, ["bench", str(tiny_hf_dir), "--prompt-tokens", "4", "--gen-tokens", "2",
                                   "--batch", "1", "--threads", "1", "--attention", "sdpa", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert [(r["attention"], r["decode_step"]) for r in json.loads(res.stdout)["results"]] == [("sdpa", "transformers")]


def test_bench_table_names_the_cpu(tiny_hf_dir):
    res = CliRunner().invoke(cli, ["bench", str(tiny_hf_dir), "--prompt-tokens", "4", "--gen-tokens", "1",
                                   "--batch", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    header = res.stdout.splitlines()[0]
    assert header.startswith(f"# CPU {cpu_name()}, ") and "threads" in header
    assert res.stdout.count("\n| ") == 2  # the column header and one result row


@pytest.mark.parametrize("args,pattern", [
    (["--batch", "1,x"], r"--batch.*positive integers"),
    (["--batch", "0"], r"--batch.*positive integers"),
    (["--prompt-tokens", "0"], r"prompt-tokens"),
    (["--prompt-tokens", "100", "--gen-tokens", "29"], r"100 \+ --gen-tokens 29 .* context of 128 tokens"),
])
def test_bench_bad_options_one_line(tiny_hf_dir, args, pattern):
    import re

    res = CliRunner().invoke(cli, ["bench", str(tiny_hf_dir), *args])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and re.search(pattern, res.stderr)


def test_bench_missing_model_fails_before_loading(tiny_hf_dir, tmp_path):
    res = CliRunner().invoke(cli, ["bench", str(tiny_hf_dir), str(tmp_path / "nope")])
    assert res.exit_code != 0 and f"unknown model '{tmp_path / 'nope'}'" in res.stderr and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1
    res = CliRunner().invoke(cli, ["bench", str(tmp_path)])  # a folder that holds no model
    assert res.exit_code != 0 and "is neither a model folder" in res.stderr and res.stdout == ""


def test_bench_that_cannot_fit_fails_before_loading(tiny_hf_dir, monkeypatch):
    """A measurement whose lower bound (KV cache, last logits, MLP activation, model) exceeds the RAM
    available is one line before any model loads: the kernel killed a batch of 100,000 after minutes."""
    from andactl.dry_run import memory
    from andactl.dry_run.shape import model_shape
    from andactl.evaluation.throughput import least_bytes

    shape = model_shape(str(tiny_hf_dir))
    parts = least_bytes(shape, 1000, 16, 4, 4, shape.parameters * 4)
    assert parts["kv_cache"] == 2 * shape.layers * 1000 * 20 * shape.kv_width * 4 and parts["logits"] == 1000 * shape.vocab * 8
    need = sum(parts.values())
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    args = ["bench", str(tiny_hf_dir), "--batch", "1,1000", "--prompt-tokens", "16", "--gen-tokens", "4", "--dtype", "float32"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and res.stdout == "" and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"--batch 1000 x (16 + 4) tokens needs at least {need / 1e9:.1f} GB" in res.stderr
    assert "use a smaller --batch, --prompt-tokens or --gen-tokens" in res.stderr
    monkeypatch.setattr(memory, "available_bytes", lambda: need)  # exactly enough by the bound: it runs
    res = CliRunner().invoke(cli, [*args, "--repeat", "1"])
    assert res.exit_code == 0, res.stderr


def test_dtype_auto_follows_native_bf16(monkeypatch):
    from andactl.models import loading

    monkeypatch.setattr(loading, "native_bf16", lambda: True)
    assert loading.resolve_dtype_name("auto") == "bfloat16" and loading.parse_dtype("auto") == torch.bfloat16
    monkeypatch.setattr(loading, "native_bf16", lambda: False)
    assert loading.resolve_dtype_name("auto") == "float32" and loading.parse_dtype("auto") == torch.float32
    assert loading.resolve_dtype_name("auto", "cuda:0") == "bfloat16"
    assert loading.resolve_dtype_name("float16") == "float16"


def test_packed_model_bf16_end_to_end_vs_fp32():
    """Packed tiny llama, cpp backend: in bf16 every AndaLinear returns bf16 (no float32 tensors
    between modules) and the perplexity is within 1% of the float32 run (bf16 carries 8 mantissa
    bits through attention, norms and the Anda inputs; observed 0.08%)."""
    from andactl.context import PassContext
    from andactl.evaluation.perplexity import perplexity
    from andactl.kernels import backend
    from andactl.models.anda_linear import AndaLinear
    from andactl.manager import PassManager
    from andactl.models.adapters import get_adapter

    if backend.resolve_backend("auto", torch.device("cpu")).name != "cpp":
        pytest.skip("C++ extension unavailable")
    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=4, seqlen=64)
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64},
                             {"pass": "set_anda_bits", "bits": [8, 8, 8, 8]}, {"pass": "pack"}]).run(ctx)
    backend.set_backend(model, "cpp")
    ppl32 = perplexity(model, ctx.tokenizer, ROWS, seqlen=64, batch_size=2).ppl
    model.to(torch.bfloat16)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for m in model.modules()
             if isinstance(m, AndaLinear)]
    ppl16 = perplexity(model, ctx.tokenizer, ROWS, seqlen=64, batch_size=2).ppl
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {torch.bfloat16}
    print(f"packed tiny llama ppl fp32 {ppl32:.4f} bf16 {ppl16:.4f}")
    assert 1.0 < ppl32 < 1e4 and ppl16 == pytest.approx(ppl32, rel=1e-2)


def test_bench_prefill_computes_the_last_logits_only_like_generate():
    """The timed prefill asks for the last position's logits only (``logits_to_keep=1``, what
    transformers' generate passes): the LM head sees one position per sequence in the prefill and
    in every decode step, and the greedy tokens equal those of a full-logits prefill."""
    from andactl.evaluation import throughput

    model, _ = tiny_model("llama", seed=5)
    seen = []
    hook = model.lm_head.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    ids = torch.randint(0, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    try:
        throughput._prefill_decode(model, ids, 3, reserved=False)
    finally:
        hook.remove()
    assert seen == [(2, 1, model.config.hidden_size)] * 4  # prefill + 3 steps
    with torch.no_grad():
        full = model(input_ids=ids).logits[:, -1]
        last = model(input_ids=ids, logits_to_keep=1).logits[:, -1]
    assert torch.equal(full.argmax(-1), last.argmax(-1))
    torch.testing.assert_close(last, full, rtol=1e-5, atol=1e-5)
