"""The lean decode step (andactl/models/decode_step.py) and its row ops (kernels/rows.py):
``andactl::rotary`` equals transformers' rotary expression bit for bit and ``andactl::rms_norm``
the RMSNorm expressions up to float32 summation order, in float32 / bfloat16 / float16; the lean
step gives transformers' logits step by step (tiny llama / qwen2, dense, SliceGPT-sliced with
shortcuts, packed W4 + Anda with fused sibling linears) and is really taken, while prefill, padded
batches, hidden-state outputs and masked (simulated-slicing) layers go to transformers; models it
does not reproduce are left untouched."""
from __future__ import annotations

import copy

import pytest
import torch
from test_decode_attention import _greedy_logits
from test_sibling_linears import packed
from tiny_models import HIDDEN, VOCAB, fresh_model, tiny_model, tiny_sliced
from transformers.cache_utils import DynamicCache

from andactl.kernels import attention, build, rows
from andactl.models import decode_attention, decode_step
from andactl.models.kv_cache import cache_kwargs, reserved_cache
from andactl.models.sibling_linears import SiblingGroup

_RES = build.load()
pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")
# the lean step is only installed where the attention kernel has a SIMD path (head size 16 here)
needs_simd = pytest.mark.skipif(not (_RES.ok and attention.vectorized(16)), reason="no SIMD attention path")
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_equals_transformers_expression(dtype):
    """Strided q (a transposed projection view), cos shared by the batch or per sequence, several
    tokens, a head size off any SIMD width: bit-identical to the torch expression."""
    g = torch.Generator().manual_seed(0)
    for b, h, t, d, per_batch in [(8, 9, 1, 64, False), (3, 2, 5, 6, True), (1, 4, 2, 128, False)]:
        x = (torch.randn(b, t, h, d, generator=g) * 4).to(dtype).transpose(1, 2)
        cos = torch.randn(b if per_batch else 1, 1, t, d, generator=g).to(dtype)
        sin = torch.randn(b if per_batch else 1, 1, t, d, generator=g).to(dtype)
        got = torch.ops.andactl.rotary(x, cos, sin)
        ref = rows.rotary_reference(x, cos, sin)
        assert got.dtype == dtype and got.shape == ref.shape and torch.equal(got, ref), (b, h, t, d)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wdtype", [None, *DTYPES])
def test_rms_norm_equals_expression(dtype, wdtype):
    """transformers' RMSNorm (divisor = width) and andactl's weightless RMSN (divisor = the original
    width, here larger), with torch's type promotion: float32 to 2 ulp; where x is 16-bit, equal
    but for rare roundings of the normed value on the other side of a tie (one ulp of x's dtype, at
    most 1% of values)."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(6, 3, 200, generator=g) * 5).to(dtype)
    w = None if wdtype is None else (0.5 + torch.rand(200, generator=g)).to(wdtype)
    ulp = {torch.float32: 2.5e-7, torch.bfloat16: 2 ** -7, torch.float16: 2 ** -10}
    for divisor in (200, 256):
        got = torch.ops.andactl.rms_norm(x, w, 1e-5, float(divisor))
        ref = rows.rms_norm_reference(x, w, 1e-5, divisor)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        tol = max(ulp[dtype], ulp[ref.dtype])
        torch.testing.assert_close(got.float(), ref.float(), rtol=tol, atol=1e-7)
        if dtype != torch.float32:
            assert (got != ref).float().mean() <= 0.01


def test_row_ops_reject_bad_operands():
    x = torch.randn(2, 4, 1, 8)
    with pytest.raises(RuntimeError, match="weight must be"):
        torch.ops.andactl.rms_norm(x, torch.ones(7), 1e-5, 8.0)
    with pytest.raises(RuntimeError, match="float32, bfloat16 or float16"):
        torch.ops.andactl.rms_norm(x.to(torch.int32), None, 1e-5, 8.0)
    with pytest.raises(RuntimeError, match="cos and sin must"):
        torch.ops.andactl.rotary(x, torch.ones(2, 4, 1, 8), torch.ones(2, 4, 1, 8))
    with pytest.raises(RuntimeError, match="even"):
        torch.ops.andactl.rotary(x[..., :7], torch.ones(1, 1, 1, 7), torch.ones(1, 1, 1, 7))


def _count_steps(mp) -> list:
    calls, real = [], decode_step.DecodeStep.__call__
    mp.setattr(decode_step.DecodeStep, "__call__", lambda self, *a: calls.append(1) or real(self, *a))
    return calls


def _lean_vs_transformers(model, steps=40, batch=3, dtype=torch.float32):
    """Greedy logits of transformers' forward (andactl_sdpa attention, reserved cache), then the
    same prompt and tokens fed through the lean step (its prefill, then its decode steps);
    (reference, lean, number of lean calls)."""
    ids = torch.randint(0, model.config.vocab_size, (batch, 7), generator=torch.Generator().manual_seed(5))
    with torch.inference_mode(), pytest.MonkeyPatch.context() as mp, decode_attention.enabled(model):
        ref, tokens, _ = _greedy_logits(model, ids, steps, reserved_cache(model))
        calls = _count_steps(mp)
        assert decode_step.why_not(model) is None and decode_step.enable(model)
        try:
            got, _, cache = _greedy_logits(model, ids, steps, reserved_cache(model), tokens)
        finally:
            decode_step.disable(model)
        assert not decode_step.enabled_on(model)
    assert cache.get_seq_length() == 7 + steps
    return ref, got, len(calls)


def _tiny_mistral():
    from transformers import MistralConfig

    cfg = MistralConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=96, max_position_embeddings=128,
                        sliding_window=None, initializer_range=0.1)
    torch.manual_seed(0)
    return fresh_model(cfg)


@needs_simd
@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "smollm3", "mistral"])
def test_lean_step_equals_transformers_dense(family):
    """llama: 270 steps, past the reserved cache's first growth (7 + 256 tokens)."""
    model = _tiny_mistral() if family == "mistral" else tiny_model(family)[0]
    steps = 270 if family == "llama" else 40
    ref, got, calls = _lean_vs_transformers(model, steps=steps)
    assert calls == steps + 1  # the prefill of the empty cache and every decode step
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


@needs_simd
@pytest.mark.parametrize("family", ["llama", "qwen3", "smollm3"])
def test_lean_step_bfloat16_within_rounding(family):
    model = tiny_model(family, torch.bfloat16)[0]
    ref, got, calls = _lean_vs_transformers(model)
    assert calls == 41
    torch.testing.assert_close(got, ref, atol=0.02 * float(ref.abs().max()), rtol=0)


@needs_simd
@pytest.mark.parametrize("family", ["llama", "qwen3", "smollm3"])
def test_lean_step_equals_transformers_sliced(family):
    """A SliceGPT-sliced llama / qwen3 / smollm3 (weightless RMSN norms, shortcut matrices between
    blocks; qwen3's per-head q / k norms keep their weights; smollm3's second layer has no rotary)."""
    model = tiny_sliced(family, 0.25).model
    assert any(getattr(layer, "attn_shortcut", None) is not None for layer in model.model.layers)
    ref, got, calls = _lean_vs_transformers(model)
    assert calls == 41
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    model.model.layers[1].mask_dims = (HIDDEN, HIDDEN, HIDDEN)  # simulated slicing (here a no-op mask)
    _, got_masked, calls = _lean_vs_transformers(model, steps=3)
    assert calls == 0  # masked layers run transformers' forward
    torch.testing.assert_close(got_masked, got[:4], atol=1e-5, rtol=0)


@needs_simd
def test_lean_step_sliced_bfloat16_runs_the_shortcut_op_within_rounding():
    """bfloat16 shortcuts of decode steps (one row per sequence, 3 sequences) run
    andactl::shortcut_add; the logits stay within bfloat16 rounding of transformers' forward."""
    model = tiny_sliced("llama", 0.25).model.to(torch.bfloat16)
    with torch.profiler.profile() as prof:
        ref, got, calls = _lean_vs_transformers(model, steps=12)
    assert calls == 13
    ran = sum(e.count for e in prof.key_averages() if e.key == "andactl::shortcut_add")
    # every decode step's two shortcuts per layer, in the lean step and in transformers' forward
    # (the SliceGPT layers run the op for decode rows too)
    assert ran == 2 * 12 * 2 * model.config.num_hidden_layers
    torch.testing.assert_close(got, ref, atol=0.02 * float(ref.abs().max()), rtol=0)


@needs_simd
@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "smollm3"])
def test_lean_step_equals_transformers_packed(family):
    """W4 + Anda linears whose q/k/v and gate/up run as one fused call each (qwen2: biased q/k/v);
    the lean step takes each group's outputs at once (SiblingGroup.run_all)."""
    model = packed(family, symmetric=False)
    grouped, real = [], SiblingGroup.run_all
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SiblingGroup, "run_all", lambda self, x: grouped.append(1) or real(self, x))
        ref, got, calls = _lean_vs_transformers(model, steps=20)
    assert calls == 21 and len(grouped) == 21 * 2 * model.config.num_hidden_layers
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


@needs_simd
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lean_prefill_equals_transformers_at_every_position(dtype):
    """A prefill of an empty cache: the logits of every position and the cached keys / values are
    transformers' (float32 to 1e-5; bf16 within its rounding); a second multi-token call on the
    filled cache (chunked prefill) runs transformers' forward, with transformers' result."""
    model = tiny_model("llama", dtype)[0]
    key = cache_kwargs(model)[0]
    ids = torch.randint(0, model.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(8))
    with torch.inference_mode(), pytest.MonkeyPatch.context() as mp, decode_attention.enabled(model):
        ref = model(input_ids=ids, **{key: reserved_cache(model)})
        ref2 = model(input_ids=ids[:, :4], **{key: ref[key]})
        calls = _count_steps(mp)
        with decode_step.enabled(model):
            got = model(input_ids=ids, **{key: reserved_cache(model)})
            assert len(calls) == 1
            got2 = model(input_ids=ids[:, :4], **{key: got[key]})
            assert len(calls) == 1
    tol = 1e-5 if dtype == torch.float32 else 0.02 * float(ref.logits.abs().max())
    torch.testing.assert_close(got.logits.float(), ref.logits.float(), atol=tol, rtol=0)
    torch.testing.assert_close(got2.logits.float(), ref2.logits.float(), atol=tol, rtol=0)
    for a, b in zip(got[key].layers, ref[key].layers):
        torch.testing.assert_close(a.keys.float(), b.keys.float(), atol=tol, rtol=0)
        torch.testing.assert_close(a.values.float(), b.values.float(), atol=tol, rtol=0)


@needs_simd
def test_lean_step_declines_other_calls():
    """Left-padded batches (a mask with zeros, prefill and decode), hidden-state outputs and hooked
    modules run transformers' forward: the lean step is never called, and outputs equal the
    forward without it."""
    model = tiny_model("llama")[0]
    ids = torch.randint(2, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    kw = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    key = cache_kwargs(model)[0]
    with torch.inference_mode(), pytest.MonkeyPatch.context() as mp, decode_attention.enabled(model):
        ref = model.generate(ids, **kw)
        out = model(input_ids=ids, use_cache=True, **{key: reserved_cache(model)})
        calls = _count_steps(mp)
        assert decode_step.enable(model)
        got = model.generate(ids, **kw, **{key: reserved_cache(model)})
        hid = model(input_ids=ids[:, :1], output_hidden_states=True, **{key: copy.deepcopy(out[key])})
        decode_step.disable(model)
        hid_ref = model(input_ids=ids[:, :1], output_hidden_states=True, **{key: copy.deepcopy(out[key])})
        seen = []  # a hook registered after enable (simulated quantization does this): the step declines
        handle = model.model.layers[0].mlp.down_proj.register_forward_pre_hook(lambda *a: seen.append(1))
        with decode_step.enabled(model):
            hooked = model.generate(ids[1:], max_new_tokens=4, do_sample=False, pad_token_id=0,
                                    **{key: reserved_cache(model)})
        handle.remove()
    assert torch.equal(got, ref) and not calls
    assert len(seen) == 4 and hooked.shape[1] == 14  # the prefill and 3 decode steps ran the hook
    assert len(hid.hidden_states) == len(hid_ref.hidden_states)
    torch.testing.assert_close(hid.logits, hid_ref.logits, atol=0, rtol=0)


@needs_simd
def test_lean_step_takes_generate_and_transformers_cache():
    """Unpadded ``generate`` (all-ones mask, its own position ids) goes through the lean step, on the
    reserved cache and on transformers' DynamicCache alike, with transformers' tokens."""
    model = tiny_model("llama")[0]
    ids = torch.randint(2, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(6))
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False, pad_token_id=0)
    key = cache_kwargs(model)[0]
    with torch.inference_mode(), pytest.MonkeyPatch.context() as mp, decode_attention.enabled(model):
        ref = model.generate(ids, **kw)
        calls = _count_steps(mp)
        with decode_step.enabled(model):
            got = model.generate(ids, **kw, **{key: reserved_cache(model)})
            got_dyn = model.generate(ids, **kw, **{key: DynamicCache()})
    assert torch.equal(got, ref) and torch.equal(got_dyn, ref)
    assert len(calls) == 2 * 16  # each generate: its prefill and 15 decode steps


@needs_simd
def test_unsupported_models_are_left_alone():
    opt = tiny_model("opt")[0]
    llama = tiny_model("llama")[0]
    assert "decode_attention" in decode_step.why_not(llama)  # attention not switched yet
    for other in (opt, tiny_model("phi3")[0]):  # no lean step for OPT's or Phi-3's layers
        with decode_attention.enabled(other):
            assert decode_step.why_not(other) is not None and not decode_step.enable(other)
            assert not decode_step.enabled_on(other)
    hooked = tiny_model("llama")[0]
    hooked.model.layers[1].mlp.register_forward_hook(lambda *a: None)
    with decode_attention.enabled(hooked):
        assert "hooks" in decode_step.why_not(hooked) and not decode_step.enable(hooked)
    qwen3 = tiny_model("qwen3")[0]
    qwen3.model.layers[0].self_attn.k_norm.register_forward_pre_hook(lambda *a: None)
    with decode_attention.enabled(qwen3):  # a hook on a per-head norm the lean step would skip
        assert decode_step.why_not(qwen3) is not None and not decode_step.enable(qwen3)
    with decode_step.enabled(llama):
        assert decode_step.enabled_on(llama)
        assert decode_step.enable(llama)  # idempotent: re-resolved over transformers' forward
    assert not decode_step.enabled_on(llama) and "forward" not in llama.model.__dict__
    assert llama.config._attn_implementation == "sdpa"


@pytest.mark.skipif(not _RES.ok or attention.vectorized(16), reason="only where the kernel has no SIMD path")
def test_no_lean_step_without_simd_attention():
    """Where the attention kernel would run its scalar loop (ANDA_CPU_ISA=scalar), neither the
    attention nor the lean step is switched on."""
    llama = tiny_model("llama")[0]
    with decode_step.enabled(llama):
        assert not decode_step.enabled_on(llama) and llama.config._attn_implementation == "sdpa"


@needs_simd
def test_copies_and_pickles_of_an_enabled_model_run_their_own_weights():
    """A deep copy (or pickle) of a model with the lean loop installed carries transformers' forward,
    not the original's loop: a change to the copy's weights shows in its logits; enabling the
    copy gives it its own loop."""
    import io

    model = tiny_model("llama")[0]
    key = cache_kwargs(model)[0]
    ids = torch.randint(0, model.config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(9))
    with torch.inference_mode(), decode_step.enabled(model):
        twins = [copy.deepcopy(model)]
        buf = io.BytesIO()
        torch.save(model, buf)
        buf.seek(0)
        twins.append(torch.load(buf, weights_only=False))
        base = model(input_ids=ids, **{key: reserved_cache(model)}).logits
        for twin in twins:
            assert not decode_step.enabled_on(twin)
            twin.model.layers[0].mlp.down_proj.weight.mul_(0)
            got = twin(input_ids=ids, **{key: reserved_cache(twin)}).logits
            assert not torch.allclose(got, base)
            assert decode_step.enable(twin) and decode_step.enabled_on(twin)
            lean = twin(input_ids=ids, **{key: reserved_cache(twin)}).logits
            torch.testing.assert_close(lean, got, atol=1e-5, rtol=0)
            decode_step.disable(twin)
            assert "forward" not in twin.model.__dict__
