"""Recovery fine-tuning (``recover`` pass / ``andactl recover``) on tiny random llama models."""
from __future__ import annotations

import json
import math

import pytest
import torch
from cli_helpers import assert_error_line, invoke_cli
from tiny_models import tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.errors import NumericsError
from andactl.models.loading import load_model
from andactl.passes.recover_loss import head_loss, reference_head_loss

FAST = ["--seqlen", "32", "--batch-size", "2", "--held-out", "2", "--eval-every", "2"]


@pytest.fixture(scope="module")
def sliced(tiny_hf_dir, data_dir, tmp_path_factory):
    """A tiny llama sliced by 25% (its provenance names tiny_hf_dir, the default teacher)."""
    out = tmp_path_factory.mktemp("recover") / "sliced"
    res = invoke_cli("slice", tiny_hf_dir, "--ratio", "0.25", "-o", out, "--cal-data", "ptb", "--cal-split", "validation",
                     "--cal-samples", "4", "--cal-seqlen", "64", "--data-dir", data_dir)
    assert res.exit_code == 0, res.stderr
    return out


def _recover_ctx(sliced, data_dir, tmp_path, **params):
    from andactl.pipeline import RunOptions, run_recipe
    from andactl.recipe import Recipe

    cfg = {"seqlen": 32, "batch_size": 2, "held_out": 2, "eval_every": 2, **params}
    opts = RunOptions(model=str(sliced), output=str(tmp_path) if tmp_path else None, seed=3, data_dir=data_dir, quiet=True,
                      storage_dtype="fp32")  # exact comparison with the in-memory model
    ctx, path, _ = run_recipe(Recipe(passes=[{"pass": "recover", **cfg}]), opts)
    return ctx, path


def _kl(student, teacher, ids) -> float:
    with torch.no_grad():
        lp_s = torch.log_softmax(student(ids).logits.float(), -1)
        lp_t = torch.log_softmax(teacher(ids).logits.float(), -1)
    return float((lp_t.exp() * (lp_t - lp_s)).sum(-1).mean())


def test_chunked_head_loss_equals_autograd_reference():
    gen = torch.Generator().manual_seed(0)
    head, head_t = torch.nn.Linear(16, 50, bias=False), torch.nn.Linear(24, 50, bias=True)
    h = torch.randn(37, 16, generator=gen, requires_grad=True)
    h_t = torch.randn(37, 24, generator=gen)
    labels = torch.randint(0, 50, (37,), generator=gen)
    labels[5] = -100
    stats: dict = {}
    loss = head_loss(h, head, labels, h_t, head_t, kd_weight=0.7, ce_weight=0.3, chunk=8, stats=stats)
    (g,) = torch.autograd.grad(loss, h)
    ref = reference_head_loss(h, head, labels, h_t, head_t, kd_weight=0.7, ce_weight=0.3)
    (g_ref,) = torch.autograd.grad(ref, h)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.allclose(g, g_ref, atol=1e-6, rtol=1e-4)
    assert 0.7 * stats["kl"] + 0.3 * stats["ce"] == pytest.approx(float(ref.detach()), rel=1e-5)
    with torch.no_grad():  # held-out path: no gradient work, the same loss
        assert float(head_loss(h, head, labels, h_t, head_t, kd_weight=0.7, ce_weight=0.3, chunk=8)) == float(loss.detach())


@pytest.mark.parametrize("kd,ce,unlabelled", [(1.0, 0.0, ()), (0.0, 1.0, (3, 20)), (0.0, 1.0, ()),
                                            (0.5, 2.0, ()), (0.5, 2.0, (0, 36))])
def test_chunked_head_loss_every_term_mix_equals_reference(kd, ce, unlabelled):
    """The gradient written over the chunk's reused buffers is the reference one for each mix of
    terms, with every, some or no rows unlabelled, and a chunk size that leaves a short last chunk."""
    gen = torch.Generator().manual_seed(3)
    head, head_t = torch.nn.Linear(16, 50, bias=True), torch.nn.Linear(24, 50, bias=False)
    h = torch.randn(37, 16, generator=gen, requires_grad=True)
    h_t = torch.randn(37, 24, generator=gen)
    labels = torch.randint(0, 50, (37,), generator=gen)
    labels[list(unlabelled)] = -100
    loss = head_loss(h, head, labels, h_t, head_t, kd_weight=kd, ce_weight=ce, chunk=10)
    (g,) = torch.autograd.grad(loss, h)
    ref = reference_head_loss(h, head, labels, h_t, head_t, kd_weight=kd, ce_weight=ce)
    (g_ref,) = torch.autograd.grad(ref, h)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.allclose(g, g_ref, atol=1e-7, rtol=1e-4)


def test_lora_without_training_leaves_logits_unchanged(sliced):
    from andactl.passes.recover_lora import attach, merge

    loaded = load_model(str(sliced))
    ids = tiny_inputs()
    with torch.no_grad():
        before = loaded.model(ids).logits
    names_before = [n for n, _ in loaded.model.named_parameters()]
    torch.manual_seed(0)
    trainable = attach(loaded.model, loaded.adapter, full=False)
    assert trainable.count == sum(32 * (m.in_features + m.out_features) for m in
                                  (dict(loaded.model.named_modules())[n] for n in loaded.adapter.linear_names()))
    model = merge(loaded.model, trainable)
    assert [n for n, _ in model.named_parameters()] == names_before
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, before, atol=1e-6, rtol=0)


def test_merged_artifact_equals_in_memory_model(sliced, data_dir, tmp_path):
    ctx, path = _recover_ctx(sliced, data_dir, tmp_path / "rec", method="lora", steps=3, lr=1e-2)
    ids = tiny_inputs()
    reloaded = load_model(str(path))
    with torch.no_grad():
        mem, disk, orig = ctx.model(ids).logits, reloaded.model(ids).logits, load_model(str(sliced)).model(ids).logits
    assert torch.allclose(mem, disk, atol=1e-5, rtol=0)
    assert (mem - orig).abs().max() > 1e-3  # training really changed the model
    cfg = json.loads((path / "config.json").read_text())
    assert "recovered" in cfg["andactl"]["provides"] and cfg["andactl"]["provenance"]["recovery"]["method"] == "lora"
    assert (path / "recovery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec = json.loads((path / "report.json").read_text())["passes"][0]["result"]
    assert len(rec["history"]["loss"]) == 3 and [h["step"] for h in rec["history"]["held_out"]] == [0, 2, 3]


def test_kd_lowers_kl_to_teacher_on_held_out_text(sliced, tiny_hf_dir, data_dir):
    from andactl.data.model_text import sample_from_model

    # 20 steps, 32 held-out sequences: on 10 steps and 8 sequences the held-out ratio ranged 0.77-0.98
    # over seeds; here 0.78-0.86 (fresh samples 0.79-0.85)
    ctx, _ = _recover_ctx(sliced, data_dir, None, method="kd", train_data="self", steps=20, lr=1e-2, seqlen=64,
                          batch_size=4, eval_every=20, held_out=32)
    teacher = load_model(str(tiny_hf_dir)).model
    ids = sample_from_model(teacher, 98, 16, 64, seed=999)  # fresh samples, never trained on
    before = _kl(load_model(str(sliced)).model, teacher, ids)
    after = _kl(ctx.model, teacher, ids)
    assert after < 0.9 * before, (before, after)
    res = ctx.report["passes"][0]["result"]
    assert res["teacher"] == str(tiny_hf_dir) and res["train_data"]["source"] == "self"
    assert res["held_out_after"] < 0.9 * res["held_out_before"]


def test_recover_on_mixed_text_records_it(sliced, data_dir):
    """``--train-data mix`` (half alpaca, half sampled from the teacher) trains end to end, with
    --method lora too (the teacher then only samples), and the artifact's provenance says so."""
    for method in ("kd", "lora"):
        ctx, _ = _recover_ctx(sliced, data_dir, None, method=method, train_data="mix", steps=2, seqlen=16, held_out=2)
        res = ctx.report["passes"][0]["result"]
        assert res["train_data"]["source"] == "mix" and res["train_data"]["train_sequences"] == 4
        assert res["train_data"]["held_out_sequences"] == 2 and ctx.provenance["recovery"]["train_data"]["source"] == "mix"


def test_recover_emits_no_deprecation_warnings(sliced, data_dir):
    """No FutureWarning/DeprecationWarning floods stderr: peft's `is_gradient_checkpointing` read and
    the teacher's KV-cache argument during `self` sampling both used deprecated transformers APIs."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _recover_ctx(sliced, data_dir, None, method="kd", train_data="self", steps=2, seqlen=16, held_out=1)
    bad = [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert bad == []


def test_training_is_deterministic(sliced, data_dir):
    a, _ = _recover_ctx(sliced, data_dir, None, method="kd", steps=3, lr=1e-2, ce_weight=0.5)
    b, _ = _recover_ctx(sliced, data_dir, None, method="kd", steps=3, lr=1e-2, ce_weight=0.5)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ha, hb = (x.report["passes"][0]["result"]["history"] for x in (a, b))
    timing = ("seconds", "tokens_per_second", "step_seconds")
    assert {k: v for k, v in ha.items() if k not in timing} == {k: v for k, v in hb.items() if k not in timing}
    assert len(ha["step_seconds"]) == 3 and all(t > 0 for t in ha["step_seconds"])
    assert sum(ha["step_seconds"]) <= ha["seconds"] + 1e-3  # the held-out passes are not in them



def test_recomputing_any_share_of_the_layers_trains_the_same_weights(sliced, data_dir, monkeypatch):
    """Activation checkpointing of every layer, of none, and the default's split (here: all but
    one layer, the budget set to one layer's estimate) recompute the same numbers; report.json
    records how many layers recomputed."""
    from andactl.passes import recover_train

    model = load_model(str(sliced)).model
    cfg, first = model.config, model.model.layers[0]
    layers = cfg.num_hidden_layers
    widest = max(m.out_features for m in first.modules() if isinstance(m, torch.nn.Linear))
    per_layer = recover_train.layer_activation_bytes(cfg.hidden_size, widest, cfg.num_attention_heads, 2, 32)
    assert per_layer == 2 * 32 * (4 * cfg.hidden_size + 2 * widest) * 4 + 2 * cfg.num_attention_heads * 32 * 32 * 4
    assert layers >= 2
    runs = {}
    for name, setting in (("all", True), ("none", False), ("split", None)):
        if setting is None:
            monkeypatch.setattr(recover_train, "ACTIVATION_BUDGET_BYTES", per_layer)
        ctx, _ = _recover_ctx(sliced, data_dir, None, method="kd", steps=3, lr=1e-2, ce_weight=0.5, checkpoint=setting)
        runs[name] = (ctx.model.state_dict(), ctx.report["passes"][0]["result"]["history"]["recomputed_layers"])
    assert [runs[n][1] for n in ("all", "none", "split")] == [layers, 0, layers - 1]
    ref = runs["all"][0]
    for name in ("none", "split"):
        got = runs[name][0]
        assert got.keys() == ref.keys() and all(torch.allclose(ref[k], got[k], atol=1e-6, rtol=0) for k in ref), name


def test_weights_cast_once_per_step_under_autocast(sliced, data_dir, monkeypatch):
    """Under bf16 autocast (forced here, whatever the CPU), holding autocast's weight copies through
    backward (recover_train._casts_held) gives the same weights bit for bit as casting again in the
    checkpointed recompute, with fewer float32 -> bf16 casts."""
    import contextlib

    from torch.utils._python_dispatch import TorchDispatchMode

    from andactl.passes import recover_train

    class CountCasts(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default and kwargs.get("dtype") == torch.bfloat16:
                self.n += 1
            return func(*args, **kwargs)

    monkeypatch.setattr(recover_train, "autocast_dtype", lambda device: torch.bfloat16)
    runs = {}
    for held in (True, False):
        if not held:
            monkeypatch.setattr(recover_train, "_casts_held", lambda device, amp: contextlib.nullcontext())
        with CountCasts() as count:
            ctx, _ = _recover_ctx(sliced, data_dir, None, method="kd", steps=2, full=True, lr=1e-3, checkpoint=True)
        runs[held] = (ctx.model.state_dict(), count.n)
    (held_w, held_n), (again_w, again_n) = runs[True], runs[False]
    assert held_w.keys() == again_w.keys() and all(torch.equal(held_w[k], again_w[k]) for k in held_w)
    assert held_n < again_n


def test_self_generated_text_is_seeded():
    from andactl.data.model_text import sample_from_model

    model, _ = tiny_model("llama")
    a = sample_from_model(model, 100, 3, 12, seed=5, batch_size=2)
    b = sample_from_model(model, 100, 3, 12, seed=5, batch_size=2)
    assert a.shape == (3, 12) and torch.equal(a, b) and int(a.max()) < 100
    assert not torch.equal(a, sample_from_model(model, 100, 3, 12, seed=6, batch_size=2))


def test_lr_schedule_warmup_then_cosine():
    from andactl.passes.recover_train import lr_factor

    got = [lr_factor(s, 10, 2, "cosine") for s in range(10)]
    assert got[:2] == [0.5, 1.0] and got[2] == 1.0 and got[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert all(x >= y for x, y in zip(got[1:], got[2:]))
    assert lr_factor(9, 10, 0, "linear") == pytest.approx(0.1)


@pytest.mark.parametrize("exc,code", [(KeyboardInterrupt, 130), (RuntimeError, 2)])
def test_interrupt_or_failure_writes_nothing(sliced, data_dir, tmp_path, monkeypatch, exc, code):
    import andactl.passes.recover_train as rt

    def boom(*a, **k):
        raise exc("stop")

    monkeypatch.setattr(rt, "train", boom)
    res = invoke_cli("recover", sliced, "-o", tmp_path / "out", "--steps", "2", *FAST, "--data-dir", data_dir)
    assert res.exit_code == code, res.output
    assert list(tmp_path.iterdir()) == []


def test_diverged_training_stops_and_writes_nothing(sliced, data_dir, tmp_path, monkeypatch):
    """A loss that turns NaN (a learning rate far too high, bf16 overflow) stops the run at that step
    with one line; before, the run went on to the end and wrote NaN weights no command could load."""
    import andactl.passes.recover_train as rt

    real = rt.batch_loss
    monkeypatch.setattr(rt, "batch_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    res = invoke_cli("recover", sliced, "-o", tmp_path / "out", "--steps", "5", *FAST, "--data-dir", data_dir)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.stderr and "✘ recover failed" in res.stderr, res.stderr
    assert [x for x in lines if x.startswith("error:")] == [
        "error: pass 'recover': recovery diverged: the loss is nan at step 1; nothing was written (try a lower --lr than "
        "0.001)"], res.stderr
    assert list(tmp_path.iterdir()) == []
    weights = [torch.ones(3), torch.tensor([1.0, float("inf")])]
    with pytest.raises(NumericsError, match="a trained weight is NaN or Inf after the last step"):
        rt._check_weights_finite(weights, 1e-4)
    rt._check_weights_finite(weights[:1], 1e-4)


@pytest.mark.parametrize("args,text", [
    (["--method", "sgd"], "unknown recovery method 'sgd'"),
    (["--steps", "0"], "steps must be > 0"),
    (["--lr", "0"], "lr must be a finite number > 0, got 0.0"),
    (["--lr", "-1e-3"], "lr must be a finite number > 0"),
    (["--lr", "inf"], "lr must be a finite number > 0, got inf"),  # ran, and wrote NaN weights no command could load
    (["--lr", "nan"], "lr must be a finite number > 0, got nan"),
    (["--ce-weight", "nan"], "recovery ce_weight must be a finite number >= 0, lora_alpha a finite number > 0, "
                             "lora_dropout in [0, 1); got nan, 10.0, 0.05"),  # ran at loss nan, wrote NaN weights
    (["--minutes", "inf"], "Invalid value for '--minutes': 'inf' is not a finite number"),  # an internal error
    (["--seed", str(2**64)], "Invalid value for '--seed'"),  # an internal error (torch takes 64-bit seeds)
    (["--train-data", "wikitext2/test"], "evaluation split wikitext2/test"),
    (["--train-data", "wikitext"], "wikitext2/train: none of wikitext2/wiki.train.raw in data dir"),
    (["--train-data", "ptb/test"], "evaluation split ptb/test"),
    (["--train-data", "arc_e"], "zero-shot evaluation set"),
    (["--seqlen", "129"], "--seqlen 129 exceeds the model's context length (max_position_embeddings 128)"),
    (["--teacher", "/nonexistent-andactl/teacher"], "unknown teacher model '/nonexistent-andactl/teacher'"),
])
def test_bad_input_one_line_nothing_written(sliced, data_dir, tmp_path, args, text):
    assert_error_line(invoke_cli("recover", sliced, "-o", tmp_path / "out", *args, "--data-dir", data_dir), text)
    assert not (tmp_path / "out").exists()


def test_the_model_itself_as_teacher_is_refused(sliced, data_dir, tmp_path, monkeypatch):
    """Distillation alone from the model being recovered starts at zero loss and never moves: one
    line, nothing written (the same folder by another spelling too); with cross-entropy mixed in the
    self-teacher is a regulariser and is taken."""
    monkeypatch.chdir(sliced.parent)
    for teacher in (str(sliced), f"./{sliced.name}/"):
        res = invoke_cli("recover", sliced, "-o", tmp_path / "out", "--teacher", teacher, "--data-dir", data_dir)
        assert_error_line(res, f"--teacher {teacher} is the model being recovered")
        assert not (tmp_path / "out").exists()
    from andactl.passes.recover_teacher import check_teacher

    check_teacher(str(sliced), str(sliced), ce_weight=0.5)  # KD + CE to its own start: no error


def test_missing_model_named_before_the_teacher_check(data_dir, tmp_path):
    # a path that is not there has no provenance either: the error names the model, not the teacher
    res = invoke_cli("recover", tmp_path / "nowhere", "-o", tmp_path / "out", "--data-dir", data_dir)
    assert_error_line(res, f"unknown model '{tmp_path / 'nowhere'}'")
    assert list(tmp_path.iterdir()) == []


def test_head_products_split_needs_amx_tiles(sliced, data_dir, tmp_path, monkeypatch):
    from andactl.kernels import split_gemm

    monkeypatch.setattr(split_gemm, "tiles_expected", lambda: False)
    res = invoke_cli("recover", sliced, "-o", tmp_path / "out", "--head-products", "split", "--data-dir", data_dir)
    assert_error_line(res, "head_products 'split' needs a CPU with AMX-BF16 tiles")
    assert not (tmp_path / "out").exists()
    res = invoke_cli("recover", sliced, "-o", tmp_path / "out", "--head-products", "bf16", "--data-dir", data_dir)
    assert res.exit_code == 2 and "'bf16' is not one of" in res.stderr
    assert not (tmp_path / "out").exists()


def test_head_products_rule():
    from andactl.passes.recover_loss import SPLIT_HEADS_AUTO_BYTES, uses_split_heads

    cap = SPLIT_HEADS_AUTO_BYTES
    assert uses_split_heads("auto", cap, True) and not uses_split_heads("auto", cap + 1, True)
    assert uses_split_heads("split", 10 * cap, True) and not uses_split_heads("split", 1, False)
    assert not uses_split_heads("float32", 1, True) and not uses_split_heads("auto", 1, False)


@pytest.mark.parametrize("mode", ["auto", "float32"])
def test_head_products_recorded(sliced, data_dir, mode):
    """The run records how its heads multiplied: float32 when asked, split_gemm under auto exactly
    where this CPU runs it on AMX tiles (the tiny heads are far below the auto cap)."""
    from andactl.kernels import split_gemm

    ctx, _ = _recover_ctx(sliced, data_dir, None, method="kd", steps=2, head_products=mode)
    got = ctx.report["passes"][0]["result"]["history"]["head_products"]
    split = mode == "auto" and split_gemm.hardware()
    assert got == ("split bf16 on AMX tiles (float32-grade)" if split else "float32 (torch)")


def test_kd_on_unsliced_model_needs_teacher(tiny_hf_dir, data_dir, tmp_path):
    assert_error_line(invoke_cli("recover", tiny_hf_dir, "-o", tmp_path / "out", "--data-dir", data_dir), "needs --teacher")
    assert not (tmp_path / "out").exists()


def test_teacher_with_other_tokenizer_refused(sliced, data_dir, tmp_path):
    model, _ = tiny_model("llama", seed=4)
    tok = char_tokenizer()
    tok.add_tokens(["<extra>"])
    model.save_pretrained(str(tmp_path / "t"))
    tok.save_pretrained(str(tmp_path / "t"))
    res = invoke_cli("recover", sliced, "--teacher", tmp_path / "t", "-o", tmp_path / "out", "--data-dir", data_dir)
    assert_error_line(res, "different vocabulary/tokenizer")
    assert not (tmp_path / "out").exists()


def test_recipe_slice_recover_quantize_pack_through_cli(tiny_hf_dir, data_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"model: {tiny_hf_dir}\ncalibration: {{dataset: ptb, split: validation, samples: 4, seqlen: 64, batch_size: 2}}\n"
        "passes:\n  - pass: fuse_norms\n  - pass: rotate\n    ratio: 0.25\n  - pass: slice\n"
        "  - pass: recover\n    steps: 2\n    seqlen: 32\n    batch_size: 2\n    held_out: 2\n"
        "  - pass: quantize_weights\n    method: rtn\n    group_size: 64\n  - pass: set_anda_bits\n    bits: [8, 8, 8, 8]\n"
        "  - pass: pack\n")
    res = invoke_cli("run", recipe, "-o", tmp_path / "out", "--data-dir", data_dir, "--format", "json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert [p["pass"] for p in summary["passes"]] == ["fuse_norms", "rotate", "slice", "recover", "quantize_weights",
                                                       "set_anda_bits", "pack"]
    assert summary["passes"][3]["result"]["teacher"] == str(tiny_hf_dir)
    loaded = load_model(str(tmp_path / "out"))
    with torch.no_grad():
        assert torch.isfinite(loaded.model(tiny_inputs()).logits).all()
    recipe.write_text(recipe.read_text().replace("seqlen: 32", "seqlen: 129"))  # past the 128-token context
    assert_error_line(invoke_cli("run", recipe, "-o", tmp_path / "long", "--data-dir", data_dir),
                    "recover seqlen 129 exceeds the model's context length (max_position_embeddings 128)")
    assert not (tmp_path / "long").exists()


def test_repeat_epochs_uses_every_row_evenly():
    from andactl.passes.recover_data import epoch_order

    ids = torch.arange(5 * 3).reshape(5, 3)
    out = ids[epoch_order(5, 12, seed=7)]
    assert out.shape == (12, 3) and torch.equal(out[:5], ids)  # the first epoch as sampled
    counts = torch.bincount(out[:, 0] // 3, minlength=5)
    assert sorted(counts.tolist()) == [2, 2, 2, 3, 3]  # each row 2 or 3 times, rows kept whole
    assert sorted(out[5:10, 0].tolist()) == sorted(ids[:, 0].tolist())  # the second epoch is a permutation
    assert torch.equal(epoch_order(5, 12, 7), epoch_order(5, 12, seed=7))
    assert not torch.equal(epoch_order(5, 12, 7), epoch_order(5, 12, seed=8))


def test_small_training_split_is_repeated_not_refused(tmp_path):
    from andactl.errors import DataError
    from andactl.passes.recover_data import dataset_text

    (tmp_path / "alpaca").mkdir()
    rows = [{"instruction": f"Say word {i} often.", "input": "", "output": f"word{i} " * 12} for i in range(20)]
    (tmp_path / "alpaca" / "alpaca_data.json").write_text(json.dumps(rows))
    text = dataset_text("alpaca", char_tokenizer(), 40, 1, 200, seed=1, data_dir=tmp_path)
    info = text.to_dict()
    distinct = {tuple(r.tolist()) for r in text.train}
    assert text.train.shape == (40, 200) and 1 <= info["distinct_sequences"] == len(distinct) < 40
    assert info["epochs"] == round(40 / len(distinct), 3)
    assert not distinct & {tuple(r.tolist()) for r in text.held_out}  # held-out rows never trained on
    unique, order = text.unique_rows()
    assert unique.shape[0] == len(distinct) == len({tuple(r.tolist()) for r in unique})
    assert torch.equal(unique[order], text.train)
    with pytest.raises(DataError, match="at least 1 \\+ 5 needed"):
        dataset_text("alpaca", char_tokenizer(), 40, 5, 200, seed=1, data_dir=tmp_path)
