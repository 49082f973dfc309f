"""Distillation from precomputed top-k teacher targets (``andactl recover --teacher-topk K``)."""
from __future__ import annotations

import contextlib
import gc
import json
import math
import weakref

import pytest
import torch
from cli_helpers import assert_error_line
from click.testing import CliRunner
from test_recover import _recover_ctx, sliced  # noqa: F401  (the module's fixture)
from tiny_models import tiny_inputs

from andactl.cli.main import cli
from andactl.models.loading import load_model
from andactl.passes.recover_loss import head_loss, reference_head_loss
from andactl.passes.recover_topk import topk_of_logits

FAST = ["--seqlen", "32", "--batch-size", "2", "--held-out", "2", "--eval-every", "2", "--steps", "2"]


def _heads():
    gen = torch.Generator().manual_seed(1)
    head, head_t = torch.nn.Linear(16, 50, bias=False), torch.nn.Linear(24, 50, bias=True)
    h = torch.randn(37, 16, generator=gen, requires_grad=True)
    h_t = 3 * torch.randn(37, 24, generator=gen)  # peaked teacher distributions: small tails
    return head, head_t, h, h_t


@pytest.mark.parametrize("k", [1, 5, 49])
def test_topk_loss_and_gradient_equal_autograd_reference(k):
    head, head_t, h, h_t = _heads()
    with torch.no_grad():
        targets = topk_of_logits(head_t(h_t).float(), k)
    labels = torch.randint(0, 50, (37,), generator=torch.Generator().manual_seed(2))
    stats: dict = {}
    loss = head_loss(h, head, labels, kd_weight=0.7, ce_weight=0.3, chunk=8, stats=stats, teacher_topk=targets)
    (g,) = torch.autograd.grad(loss, h)
    ref = reference_head_loss(h, head, labels, kd_weight=0.7, ce_weight=0.3, teacher_topk=targets)
    (g_ref,) = torch.autograd.grad(ref, h)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.allclose(g, g_ref, atol=1e-6, rtol=1e-4)
    assert 0.7 * stats["kl"] + 0.3 * stats["ce"] == pytest.approx(float(ref.detach()), rel=1e-5)
    full = head_loss(h, head, None, h_t, head_t, chunk=8)
    assert 0 < stats["kl"] <= float(full.detach()) + 1e-6  # a coarsened KL never exceeds the full one


def test_topk_of_whole_vocabulary_is_the_full_kl():
    head, head_t, h, h_t = _heads()
    with torch.no_grad():
        targets = topk_of_logits(head_t(h_t).float(), 50)
    assert torch.isneginf(targets[2]).all()  # nothing left outside the kept tokens
    sparse = head_loss(h, head, teacher_topk=targets, chunk=8)
    (g_sparse,) = torch.autograd.grad(sparse, h)
    full = head_loss(h, head, None, h_t, head_t, chunk=8)
    (g_full,) = torch.autograd.grad(full, h)
    assert float(sparse.detach()) == pytest.approx(float(full.detach()), rel=1e-6)
    assert torch.allclose(g_sparse, g_full, atol=1e-7, rtol=1e-5)


def test_topk_targets_keep_the_most_likely_tokens_and_the_rest_of_the_mass():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0], [0.0, 0.0, 5.0, 0.0]])
    idx, logp, tail = topk_of_logits(logits, 2)
    p = torch.softmax(logits, -1)
    assert idx.tolist()[0] == [0, 2] and idx[1, 0] == 2
    assert torch.allclose(logp.exp(), p.gather(1, idx), atol=1e-7)
    assert torch.allclose(tail.exp(), 1 - p.gather(1, idx).sum(-1), atol=1e-7)


def test_log_tail_in_a_scratch_buffer_equals_torch_logsumexp():
    from andactl.passes.recover_loss import log_tail

    gen = torch.Generator().manual_seed(4)
    logits = 6 * torch.randn(5, 50, generator=gen)
    logits[1] += 200.0  # the same distribution; exp overflows float32 unless the maximum is taken out
    idx = logits.topk(7, dim=-1).indices
    idx[3] = torch.arange(7)  # not the most likely tokens
    want = log_tail(logits, idx)
    got = log_tail(logits, idx, scratch=torch.empty_like(logits))
    assert torch.allclose(got, want, atol=1e-6, rtol=0) and not torch.equal(got, torch.zeros_like(got))
    every = torch.arange(50).expand(5, 50)  # nothing left: -inf, as torch.logsumexp gives
    assert torch.isneginf(log_tail(logits, every, scratch=torch.empty_like(logits))).all()


def test_recover_with_whole_vocabulary_targets_matches_the_in_process_teacher(sliced, data_dir):  # noqa: F811
    vocab = load_model(str(sliced)).model.config.vocab_size
    common = dict(method="kd", full=True, steps=3, lr=1e-3)
    a, _ = _recover_ctx(sliced, data_dir, None, **common)
    b, _ = _recover_ctx(sliced, data_dir, None, teacher_topk=vocab, **common)
    ra, rb = (x.report["passes"][0]["result"] for x in (a, b))
    assert rb["teacher_topk"] == vocab and ra["teacher_topk"] == 0
    assert rb["history"]["loss"] == pytest.approx(ra["history"]["loss"], rel=1e-4)
    ids = tiny_inputs()
    with torch.no_grad():
        la, lb, orig = a.model(ids).logits, b.model(ids).logits, load_model(str(sliced)).model(ids).logits
    assert (la - orig).abs().max() > 1e-3  # trained
    assert torch.allclose(la, lb, atol=1e-4, rtol=0)


def test_repeated_text_gets_each_sequences_targets_once(sliced, tmp_path, monkeypatch):  # noqa: F811
    """A training split repeated in epochs: the teacher's targets are computed for its distinct
    sequences only and indexed per training row, so training matches the in-process teacher."""
    import andactl.passes.recover_topk as rt
    from andactl.passes.recover_data import dataset_text

    (tmp_path / "alpaca").mkdir()
    # alpaca's prompt template fills the first 124 characters: the rows differ right after it
    rows = [{"instruction": f"{chr(65 + i) * 20} describe it.", "input": "", "output": "Nice. " * 8} for i in range(12)]
    (tmp_path / "alpaca" / "alpaca_data.json").write_text(json.dumps(rows))
    calls = []
    targets = rt.teacher_targets

    def spy(teacher, ids, *args, **kwargs):
        out = targets(teacher, ids, *args, **kwargs)
        calls.append((ids, out))
        return out

    monkeypatch.setattr(rt, "teacher_targets", spy)
    vocab = load_model(str(sliced)).model.config.vocab_size
    common = dict(method="kd", full=True, steps=8, lr=1e-3, seqlen=128, batch_size=4, held_out=1, eval_every=4)
    sparse, _ = _recover_ctx(sliced, tmp_path, None, teacher_topk=vocab, **common)
    dense, _ = _recover_ctx(sliced, tmp_path, None, **common)
    rs, rd = (x.report["passes"][0]["result"] for x in (sparse, dense))
    distinct = rs["train_data"]["distinct_sequences"]
    assert rs["train_data"]["train_sequences"] == 32 and rs["train_data"]["epochs"] >= 2
    assert [ids.shape[0] for ids, _ in calls] == [distinct, 1]  # once per distinct sequence, then the held-out row
    text = dataset_text("alpaca", load_model(str(sliced)).tokenizer, 32, 1, 128, 3, tmp_path)  # what training read
    (ids, train), _ = calls
    assert len({tuple(r.tolist()) for r in ids}) == distinct  # the sequences do differ
    assert torch.equal(ids[train.index], text.train)  # each training row points at its own sequence's targets
    assert rs["history"]["loss"] == pytest.approx(rd["history"]["loss"], rel=1e-4)


def test_topk_kd_lowers_kl_and_frees_the_teacher_before_training(sliced, data_dir, monkeypatch):  # noqa: F811
    import andactl.passes.recover as rec
    import andactl.passes.recover_train as rt

    seen: dict = {}
    load_teacher, train = rec.Recover._load_teacher, rt.train

    def loading(ctx, source):
        seen["student_parked"] = all(p.numel() == 0 for p in ctx.model.parameters())
        teacher = load_teacher(ctx, source)
        seen["teacher"] = weakref.ref(teacher.model)
        return teacher

    def training(*args, **kwargs):
        gc.collect()
        seen["alive_in_training"] = seen["teacher"]() is not None
        return train(*args, **kwargs)

    monkeypatch.setattr(rec.Recover, "_load_teacher", staticmethod(loading))
    monkeypatch.setattr(rt, "train", training)
    ctx, _ = _recover_ctx(sliced, data_dir, None, method="kd", steps=10, lr=1e-2, seqlen=64, batch_size=4,
                          eval_every=10, teacher_topk=8)
    assert seen["alive_in_training"] is False and seen["student_parked"] is True
    res = ctx.report["passes"][0]["result"]
    assert res["teacher_topk"] == 8 and res["held_out_after"] < 0.9 * res["held_out_before"]
    assert res["loss"] == "KL over the teacher's top 8 tokens + the rest's mass"


@pytest.mark.parametrize("args,text", [
    (["--teacher-topk", "-1"], "teacher_topk must be >= 0"),
    (["--teacher-topk", "4", "--method", "lora"], "teacher_topk is for --method kd"),
    (["--teacher-topk", "100000"], "--teacher-topk 100000 exceeds the vocabulary"),
])
def test_bad_topk_one_line_nothing_written(sliced, data_dir, tmp_path, args, text):  # noqa: F811
    res = CliRunner().invoke(cli, [str(a) for a in ["recover", sliced, "-o", tmp_path / "out", *FAST, *args,
                                                     "--data-dir", data_dir]], catch_exceptions=False)
    assert_error_line(res, text)
    assert not (tmp_path / "out").exists()


def test_head_loss_is_float32_under_autocast():
    """bf16 logits of magnitude 16-32 are rounded to steps of 0.125; the loss and its gradient stay float32."""
    head, head_t, h, h_t = _heads()
    head.weight.data *= 8  # logits in the tens
    targets = topk_of_logits(head_t(h_t).float().detach(), 5)
    for kwargs in ({"h_teacher": h_t, "teacher_head": head_t}, {"teacher_topk": targets}):
        plain = head_loss(h, head, chunk=8, **kwargs)
        (g_plain,) = torch.autograd.grad(plain, h)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = head_loss(h, head, chunk=8, **kwargs)
        (g_amp,) = torch.autograd.grad(amp, h)
        assert float(amp.detach()) == float(plain.detach()) and torch.equal(g_amp, g_plain)


@pytest.mark.parametrize("fail", [False, True])
def test_parked_model_is_restored_bit_for_bit(fail):
    from tiny_models import tiny_model

    from andactl.passes.recover_topk import parked

    model, _ = tiny_model("llama")
    model.lm_head.weight = model.model.embed_tokens.weight  # tied weights stay tied
    model.model.layers[0].mlp.up_proj.to(torch.bfloat16)  # a dtype numpy cannot write directly
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
        with parked(model, torch.device("cpu")):
            assert all(p.numel() == 0 for p in model.parameters())
            if fail:
                raise RuntimeError("teacher failed")
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) and after[k].dtype == before[k].dtype
                                                 for k in before)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_topk_on_self_generated_text(sliced, data_dir):  # noqa: F811
    """The teacher samples the text while the student is parked, then gives its targets on it."""
    ctx, _ = _recover_ctx(sliced, data_dir, None, method="kd", train_data="self", steps=2, seqlen=16, held_out=1,
                          teacher_topk=4)
    res = ctx.report["passes"][0]["result"]
    assert res["train_data"]["source"] == "self" and res["teacher_topk"] == 4
    assert len(res["history"]["loss"]) == 2 and all(math.isfinite(v) for v in res["history"]["loss"])


def _dry_run(sliced, data_dir, tmp_path, *args):  # noqa: F811
    res = CliRunner().invoke(cli, [str(a) for a in ["recover", sliced, "-o", tmp_path / "out", *FAST, *args,
                                                     "--data-dir", data_dir, "--dry-run", "--format", "json"]],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert not (tmp_path / "out").exists()
    return {r["pass"]: r for r in json.loads(res.stdout)["passes"]}


@pytest.mark.parametrize("tiles", [False, True])
def test_dry_run_counts_the_teacher_beside_the_student_unless_topk(sliced, data_dir, tmp_path, monkeypatch,  # noqa: F811
                                                                  tiles):
    """... and on AMX CPUs (``tiles``, with bf16 autocast) the heads packed for split_gemm: the
    student's twice, the in-process teacher's once, or the teacher's in its top-k phase; and a bf16
    copy of every trained weight."""
    from andactl.dry_run.costs import BASE_RSS
    from andactl.dry_run.recover import recover_rows
    from andactl.kernels import split_gemm

    monkeypatch.setattr(split_gemm, "tiles_expected", lambda: tiles)
    monkeypatch.setattr("andactl.models.loading.native_bf16", lambda: tiles)  # autocast: bf16 copies of trained weights

    inproc = _dry_run(sliced, data_dir, tmp_path, "--full")
    sparse = _dry_run(sliced, data_dir, tmp_path, "--full", "--teacher-topk", "8")
    assert list(inproc) == ["load", "recover: load teacher", "recover: training", "write"]
    assert list(sparse) == ["load", "recover: teacher (student parked)", "recover: training", "write"]
    assert "hint" in inproc["recover: training"] and "hint" not in sparse["recover: training"]
    shape, teacher, step = _recover_shapes()

    def rows(**kw):
        got = recover_rows({**step, **kw}, shape, 10**9, 4, teacher, 1e11, False)
        return {r["pass"]: r["host_ram_gb"] for r in got}

    full, topk, lora = rows(), rows(teacher_topk=64), rows(full=False)
    packed = 1000 * 64 * 4 * 512 * 2 if tiles else 0  # 32000 x 2048: 1000 blocks of 32 x 64 steps of 32, 4 bf16 tiles each
    assert packed == (split_gemm.packed_bytes(32000, 2048) if tiles else 0)
    # the float32 teacher (and its packed head)
    assert full["recover: training"] - topk["recover: training"] == pytest.approx(8.0 + packed / 1e9, abs=2e-3)
    assert topk["recover: teacher (student parked)"] == pytest.approx((BASE_RSS + 8e9 + 4e9 + packed) / 1e9, abs=2e-3)
    assert full["recover: load teacher"] == pytest.approx((BASE_RSS + 8e9 + 4e9 + 4e9) / 1e9, abs=2e-3)
    casts = 2 if tiles else 0  # bytes per trained weight held in bf16 through a step
    assert full["recover: training"] - lora["recover: training"] == pytest.approx((8e8 - 32e6) * (3 * 4 + casts) / 1e9,
                                                                                  abs=2e-3)


def _recover_shapes():
    """(student shape, teacher shape, resolved recover step) for recover_rows checks: a 1B student of
    a 2B teacher, 40 steps of 4 x 256 tokens, held-out loss every 10 steps on 8 sequences, every
    layer recomputing its activations (--checkpoint)."""
    from andactl.dry_run.shape import ModelShape

    shape = ModelShape("llama", parameters=10**9, hidden=2048, layers=16, heads=16, vocab=32000, widest=8192,
                       largest_linear=0, largest_k=8192, weights_on_disk=2 * 10**9, linear_params=8 * 10**8,
                       linear_edges=10**6)
    teacher = ModelShape(**{**shape.__dict__, "parameters": 2 * 10**9, "weights_on_disk": 4 * 10**9})
    step = {"method": "kd", "train_data": "alpaca", "full": True, "lora_rank": 32, "batch_size": 4, "seqlen": 256,
            "steps": 40, "grad_accum": 1, "eval_every": 10, "held_out": 8, "teacher_topk": 0, "checkpoint": True}
    return shape, teacher, step


def test_dry_run_times_the_teacher_at_the_forward_rate():
    """The student's steps run at the training rate; the in-process teacher, the held-out evaluations
    and the top-k phase's forward at the forward-only rate; the top-k phase adds its selection per
    teacher logit (TOPK_BYTES_PER_LOGIT at MEMORY_BYTES_PER_SECOND), the teacher's load and the
    student's parking (written to disk and read back)."""
    from andactl.dry_run.costs import DISK_BYTES_PER_SECOND, MEMORY_BYTES_PER_SECOND
    from andactl.dry_run.recover import TOPK_BYTES_PER_LOGIT, recover_rows

    shape, teacher, step = _recover_shapes()
    train, forward = 1e11, 4e11
    tokens, held = 40 * 4 * 256, (40 // 10 + 2) * 8 * 256  # training tokens; held-out evaluations' tokens

    def seconds(**kw):
        return {r["pass"]: r["seconds"] for r in recover_rows({**step, **kw}, shape, 10**9, 4, teacher, train, False,
                                                                  forward)}

    inproc, topk = seconds(), seconds(teacher_topk=64)
    assert inproc["recover: training"] == pytest.approx(
        tokens * 8e9 / train + (tokens * 2 * 2e9 + held * 2 * 3e9) / forward, abs=0.1)
    assert inproc["recover: load teacher"] == pytest.approx(12e9 / DISK_BYTES_PER_SECOND, abs=0.1)
    assert topk["recover: training"] == pytest.approx(tokens * 8e9 / train + held * 2 * 1e9 / forward, abs=0.1)
    targets = tokens + 8 * 256  # the training rows' positions and the held-out rows'
    assert topk["recover: teacher (student parked)"] == pytest.approx(
        (12e9 + 2 * 4e9) / DISK_BYTES_PER_SECOND + targets * 2 * 2e9 / forward
        + targets * 32000 * TOPK_BYTES_PER_LOGIT / MEMORY_BYTES_PER_SECOND, abs=0.1)
    same = recover_rows(step, shape, 10**9, 4, teacher, train, False)  # no forward rate given: the training rate
    assert same[-1]["seconds"] == pytest.approx(tokens * 8e9 / train + (tokens * 2 * 2e9 + held * 2 * 3e9) / train,
                                                abs=0.1)


def test_dry_run_times_sampling_the_self_text():
    """``--train-data self``: a row for sampling every training and held-out sequence from the
    teacher, ``sampling_rows`` at a time, at the sampling rate (the load dtype, no autocast), its KV
    cache beside the teacher (and the student, unless parked); linear in the steps, so --minutes
    counts it."""
    from andactl.data.model_text import sampling_rows
    from andactl.dry_run.costs import BASE_RSS, MEMORY_BYTES_PER_SECOND
    from andactl.dry_run.recover import recover_rows
    from andactl.dry_run.sampling import SAMPLE_RATE_FACTOR, SAMPLE_STEP_SECONDS_PER_LAYER

    shape, teacher, step = _recover_shapes()
    teacher.kv_width = 1024
    train, forward, sample = 1e11, 4e11, 2e11

    def rows(**kw):
        got = recover_rows({**step, "train_data": "self", **kw}, shape, 10**9, 4, teacher, train, False, forward, sample)
        return {r["pass"]: r for r in got}

    def expected(steps, own=None):
        own = own or steps * 4 + 8
        B = sampling_rows(16, 1024, 4, 256, own)
        kv = B * 256 * 16 * 2 * 1024 * 4  # the full cache: 256 tokens, 16 layers, keys and values of 1024
        per_step = (SAMPLE_STEP_SECONDS_PER_LAYER * 16 + (2e9 * 4 + kv / 2) / MEMORY_BYTES_PER_SECOND
                    + (2 * 2e9 * B + 2 * B * 256 * 2048 * 16) / (SAMPLE_RATE_FACTOR * sample))
        return B, math.ceil(own / B) * 255 * per_step, kv + 2 * B * 32000 * 4

    inproc, topk, longer = rows(), rows(teacher_topk=64), rows(steps=400)
    assert list(inproc) == ["recover: load teacher", "recover: sample text", "recover: training"]
    B, secs, cache = expected(40)
    assert B == 32 and inproc["recover: sample text"]["seconds"] == pytest.approx(secs, abs=0.1)
    assert longer["recover: sample text"]["seconds"] == pytest.approx(expected(400)[1], abs=0.1)
    assert inproc["recover: sample text"]["host_ram_gb"] == pytest.approx((BASE_RSS + 8e9 + 4e9 + cache) / 1e9, abs=2e-3)
    assert topk["recover: sample text"]["host_ram_gb"] == pytest.approx((BASE_RSS + 8e9 + cache) / 1e9, abs=2e-3)
    assert "recover: sample text" not in {r["pass"] for r in recover_rows(step, shape, 10**9, 4, teacher, train, False)}
    mix = rows(train_data="mix")  # half of the 160 training and of the 8 held-out sequences are sampled
    assert mix["recover: sample text"]["seconds"] == pytest.approx(expected(40, 80 + 4)[1], abs=0.1)


def _big_teacher(sliced, tmp_path):  # noqa: F811
    """A teacher folder with the student's tokenizer and a ~6B-parameter config (no weights: dry runs
    and the --max-memory check never read them)."""
    cfg = json.loads((sliced / "config.json").read_text())
    big = {k: v for k, v in cfg.items() if k not in ("andactl", "quantization_config")}
    big.update(model_type="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, head_dim=128)
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(big))
    for f in sliced.iterdir():
        if "token" in f.name or f.name.endswith(".jinja"):
            (folder / f.name).write_bytes(f.read_bytes())
    return folder


def test_max_memory_refusal_points_to_topk(sliced, data_dir, tmp_path):  # noqa: F811
    big = _big_teacher(sliced, tmp_path)
    args = ["recover", sliced, "-o", tmp_path / "out", *FAST, "--teacher", big, "--max-memory", "8",
            "--data-dir", data_dir]
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert_error_line(res, "--teacher-topk 64 never holds the teacher beside the student")
    assert "in pass 'recover: " in res.stderr and not (tmp_path / "out").exists()
    sparse = _dry_run(sliced, data_dir, tmp_path, "--teacher", big, "--teacher-topk", "64")
    assert sparse["recover: training"]["host_ram_gb"] < 8 < sparse["recover: teacher (student parked)"]["host_ram_gb"]


def test_recover_warns_when_the_estimate_exceeds_available_memory(sliced, data_dir, tmp_path,  # noqa: F811
                                                                  monkeypatch):
    import andactl.dry_run.memory as dr

    monkeypatch.setattr(dr, "default_max_memory_gb", lambda: 0.01 * dr.STREAM_RAM_SHARE)
    res = CliRunner().invoke(cli, [str(a) for a in ["recover", sliced, "-o", tmp_path / "out", *FAST, "--data-dir",
                                                     data_dir]], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert "exceeds the 0.01 GB available: the run may be killed" in " ".join(res.stderr.split())
    monkeypatch.setattr(dr, "default_max_memory_gb", lambda: 1e6)
    res = CliRunner().invoke(cli, [str(a) for a in ["recover", sliced, "-o", tmp_path / "out2", *FAST, "--data-dir",
                                                     data_dir]], catch_exceptions=False)
    assert res.exit_code == 0 and "available" not in res.stderr


@pytest.mark.parametrize("exc,code", [(KeyboardInterrupt, 130), (RuntimeError, 2)])
def test_interrupt_while_the_student_is_parked_leaves_nothing(sliced, data_dir, tmp_path,  # noqa: F811
                                                              monkeypatch, exc, code):
    """Ctrl-C or a failure in the teacher's phase: no output, no parked files left in the temp dir."""
    import tempfile

    import andactl.passes.recover_topk as rt

    seen = []

    def boom(*args, **kwargs):
        seen.extend(f.name for f in temp.iterdir())
        raise exc("stop")

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(rt, "teacher_targets", boom)
    res = CliRunner().invoke(cli, [str(a) for a in ["recover", sliced, "-o", tmp_path / "out", *FAST, "--teacher-topk",
                                                     "4", "--data-dir", data_dir]], catch_exceptions=False)
    assert res.exit_code == code, res.output
    assert len(seen) == 1 and seen[0].startswith("andactl-park-")  # the student was parked there
    assert not (tmp_path / "out").exists() and list(temp.iterdir()) == []


def test_recipe_with_recover_warns_too(sliced, data_dir, tmp_path, monkeypatch):  # noqa: F811
    import andactl.dry_run.memory as dr

    monkeypatch.setattr(dr, "default_max_memory_gb", lambda: 0.01 * dr.STREAM_RAM_SHARE)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("passes:\n  - pass: recover\n    steps: 1\n    seqlen: 16\n    batch_size: 2\n    held_out: 1\n")
    res = CliRunner().invoke(cli, [str(a) for a in ["run", recipe, "--model", sliced, "-o", tmp_path / "out",
                                                     "--data-dir", data_dir]], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    assert "exceeds the 0.01 GB available" in " ".join(res.stderr.split())


def test_dry_run_counts_the_layers_that_keep_their_activations():
    """--checkpoint: every layer keeps its input and one recomputes at a time (8 FLOPs per student
    parameter and token); --no-checkpoint: every layer keeps layer_activation_bytes (6 FLOPs); the
    default: the layers ACTIVATION_BUDGET_BYTES holds keep theirs, the rest recompute."""
    from andactl.dry_run.recover import recover_rows
    from andactl.passes.recover_train import ACTIVATION_BUDGET_BYTES, layer_activation_bytes

    shape, teacher, step = _recover_shapes()
    tokens, train = 40 * 4 * 256, 1e11
    held = (40 // 10 + 2) * 8 * 256 * 2e9 / train  # the held-out evaluations' forwards
    per_layer = layer_activation_bytes(2048, 8192, 16, 4, 256)
    assert per_layer == 1024 * (4 * 2048 + 2 * 8192) * 4 + 4 * 16 * 256 ** 2 * 4
    kept = ACTIVATION_BUDGET_BYTES // per_layer
    assert 0 < kept < 16  # the default splits this shape's layers

    def training(checkpoint):
        row = recover_rows({**step, "checkpoint": checkpoint}, shape, 10**9, 4, None, train, False)[-1]
        return row["host_ram_gb"] * 1e9, row["seconds"]

    (all_b, all_s), (none_b, none_s), (auto_b, auto_s) = (training(c) for c in (True, False, None))
    inputs = 1024 * 2048 * 4  # one layer's input, float32
    assert none_b - all_b == pytest.approx(15 * per_layer - 16 * inputs, abs=2e6)
    assert auto_b - all_b == pytest.approx(kept * per_layer - kept * inputs, abs=2e6)
    assert all_s == pytest.approx(tokens * 8e9 / train + held, abs=0.1)
    assert none_s == pytest.approx(tokens * 6e9 / train + held, abs=0.1)
    assert auto_s == pytest.approx(tokens * (6 + 2 * (16 - kept) / 16) * 1e9 / train + held, abs=0.1)
