"""The search's KL loss (``--search-loss kl``): exact on known distributions, 0 for the reference,
deterministic, monotone in the mantissa bits on a tiny model, honoured by the search; bad input."""
from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from tiny_models import tiny_calibration, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.cli.main import cli
from andactl.context import PassContext
from andactl.errors import ConfigError
from andactl.manager import PassManager
from andactl.models.adapters import ANDA_TYPES, get_adapter
from andactl.passes import anda_fakequant as fq
from andactl.passes.anda_fakequant import KLEvaluator, anda_activations, make_evaluator, tuple_bits
from andactl.passes.anda_search import AndaSearchConfig


def _ctx():
    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=64)
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64}]).run(ctx)
    return ctx


def test_kl_loss_reference_zero_deterministic_monotone():
    ctx = _ctx()
    kl = KLEvaluator(ctx)
    assert kl({k: None for k in ANDA_TYPES}) == 0.0
    low, high = kl(tuple_bits([3, 3, 3, 3])), kl(tuple_bits([8, 8, 8, 8]))
    assert low == kl(tuple_bits([3, 3, 3, 3]))  # deterministic
    assert low > high > 0.0
    assert math.isclose(kl.ref_ppl, make_evaluator(ctx, "ppl").ref_ppl, rel_tol=1e-12)


def _full_logit_kl(ctx, bits) -> float:
    """exp(mean KL) - 1 from whole float64 logits of the full model, masked like the search."""
    def logp():
        out = []
        with torch.inference_mode():
            for batch in ctx.calibration().batches():
                ids, mask = batch["input_ids"], batch["attention_mask"]
                keep = (mask[:, 1:] != 0) & (mask[:, :-1] != 0)
                out.append(torch.log_softmax(ctx.model(input_ids=ids, attention_mask=mask).logits[:, :-1][keep].double(), -1))
        return out
    ref = logp()
    with anda_activations(ctx.model, ctx.adapter, bits, "truncate"):
        got = logp()
    total = sum(float((r.exp() * (r - g)).sum()) for r, g in zip(ref, got))
    return math.exp(total / sum(r.shape[0] for r in ref)) - 1.0


def test_kl_loss_equals_whole_logit_kl_in_chunks(monkeypatch):
    monkeypatch.setattr(fq, "KL_TOKEN_CHUNK", 7)  # many chunks, the last one partial
    ctx = _ctx()
    kl = KLEvaluator(ctx)
    assert all(h.shape[-1] == ctx.adapter.hidden_size for h in kl.reference)  # hidden states, not logits
    for t in ([3, 3, 3, 3], [6, 4, 5, 7]):
        assert kl(tuple_bits(t)) == pytest.approx(_full_logit_kl(ctx, tuple_bits(t)), rel=1e-5)


def test_search_with_kl_accepts_only_within_tolerance():
    ctx = _ctx()
    PassManager.from_recipe([{"pass": "anda_search", "tolerance": 0.002, "max_evals": 6, "budget": "bops",
                              "loss": "kl"}]).run(ctx)
    search = ctx.report["search"]
    assert search["loss_kind"] == "kl"
    check = KLEvaluator(ctx)
    evaluated = [t for t in search["trace"] if not t["skipped"]]
    assert any(e["accepted"] for e in evaluated) and any(not e["accepted"] for e in evaluated)
    for entry in evaluated:
        loss = check(tuple_bits(entry["tuple"]))
        assert loss == entry["loss"] and entry["accepted"] == (loss <= 0.002)


def test_bad_search_loss():
    with pytest.raises(ConfigError, match="unknown search loss 'mse'; choose one of ppl, kl"):
        AndaSearchConfig(loss="mse").validate()
    res = CliRunner().invoke(cli, ["quantize", "x", "--search-loss", "mse", "-o", "y"])
    assert res.exit_code == 2 and "'mse' is not one of 'ppl', 'kl'" in res.output
