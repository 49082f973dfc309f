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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_calibration_cross_entropy_is_whole_batch_sum_in_small_chunks(monkeypatch, dtype):
    """The ppl loss's cross-entropy equals one whole-batch float32 cross-entropy sum (to 1e-6), while
    no float32 copy it makes holds more than KL_TOKEN_CHUNK positions (the whole batch's copies were
    three times its logits: the search's peak RSS)."""
    g = torch.Generator().manual_seed(0)
    B, T, V = 3, fq.KL_TOKEN_CHUNK + 37, 50
    logits = (3 * torch.randn(B, T, V, generator=g)).to(dtype)
    target = torch.randint(0, V, (B, T), generator=g)
    target[1, 5:200] = -100
    whole = float(torch.nn.functional.cross_entropy(logits.float().reshape(-1, V).double(), target.reshape(-1),
                                                    reduction="sum", ignore_index=-100))
    rows = []
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda x, *a, **k: rows.append(x.shape[0]) or real(x, *a, **k))
    got = fq.summed_cross_entropy(logits, target)
    assert got == pytest.approx(whole, rel=1e-6)
    assert max(rows) == fq.KL_TOKEN_CHUNK and sum(rows) == B * T


def test_calibration_loss_frees_each_batch_logits_before_the_next_forward():
    """A batch's logits are gone when the model computes the next batch's (a loop variable bound to
    the generator's last item kept two batches' logits alive: 0.4 GB more peak RSS for SmolLM2), and
    the loss is the mean cross-entropy over every real target."""
    import weakref

    V, views = 11, []

    class Logits(torch.Tensor):
        def __getitem__(self, index):
            view = super().__getitem__(index)
            views.append(weakref.ref(view))
            return view

    class Model(torch.nn.Module):
        alive_at_forward: list = []

        def forward(self, input_ids, attention_mask, use_cache):
            self.alive_at_forward.append(sum(ref() is not None for ref in views))
            g = torch.Generator().manual_seed(len(self.alive_at_forward))
            return type("Out", (), {"logits": torch.randn(*input_ids.shape, V, generator=g).as_subclass(Logits)})()

    batches = [{"input_ids": torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(i)),
                "attention_mask": torch.ones(2, 9, dtype=torch.long)} for i in range(3)]
    batches[2]["attention_mask"][1, 6:] = 0
    model = Model()
    got = fq.calibration_loss(model, type("Cal", (), {"batches": lambda self: iter(batches)})(), torch.device("cpu"))
    assert model.alive_at_forward == [0, 0, 0]
    total, count = 0.0, 0
    for i, b in enumerate(batches, 1):
        logits = torch.randn(2, 9, V, generator=torch.Generator().manual_seed(i))[:, :-1].double()
        target = b["input_ids"][:, 1:].masked_fill(b["attention_mask"][:, 1:] == 0, -100)
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, V), target.reshape(-1), reduction="sum"))
        count += int((target != -100).sum())
    assert got == pytest.approx(total / count, rel=1e-6)
