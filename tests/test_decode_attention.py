"""Decode-step attention: ``andactl::decode_attention`` equals torch's float32 attention at every SIMD
level this CPU has (grouped heads, K/V views into larger buffers, head sizes on and off the SIMD
path, several query tokens, extreme scores, float32 / bfloat16 / float16); the ``andactl_sdpa``
attention of a tiny GQA llama gives the logits torch's SDPA gives, step by step, and falls back
to SDPA for padded batches; the reserved KV cache holds exactly what transformers' DynamicCache
holds through growth, crop and beam reordering."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_kernels_cpp import _RES, _each_isa
from tiny_models import tiny_model

from andactl.kernels import attention
from andactl.models import decode_attention
from andactl.models.kv_cache import ReservedLayer, cache_kwargs, reserved_cache

pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")

# one rounding of the output (bf16 2^-9, f16 2^-11 relative) plus float32 summation order
ROUNDING = {torch.float32: 0.0, torch.bfloat16: 2 ** -8, torch.float16: 2 ** -10}


def _qkv(b, h, kvh, t, s, d, dtype, gen, spare=7, scale=1.0):
    """q [b, h, t, d]; k / v as views [b, kvh, s, d] of buffers with ``spare`` extra tokens."""
    q = (torch.randn(b, h, t, d, generator=gen) * scale).to(dtype)
    kb = torch.randn(b, kvh, s + spare, d, generator=gen).to(dtype)
    vb = (torch.randn(b, kvh, s + spare, d, generator=gen) * 3).to(dtype)
    return q, kb[:, :, :s], vb[:, :, :s]


def _check(q, k, v, scale, level):
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=scale, enable_gqa=True)
    got = attention.decode_attention(q, k, v, scale)
    assert got.dtype == q.dtype and got.shape == q.shape and got.is_contiguous()
    err = (got.float() - ref).abs()
    # a score's float32 error is ~eps * scale * sum |q k|: the weights' (and so the output's)
    # relative error grows with it (scores of +-400: ~1e-5 for any summation order)
    g = q.shape[1] // k.shape[1]
    cond = scale * (q.float().abs() @ k.float().abs().repeat_interleave(g, 1).transpose(-1, -2)).amax()
    bound = (2e-6 + 4 * 2 ** -24 * cond) * v.float().abs().amax() + ROUNDING[q.dtype] * ref.abs()
    assert bool((err <= bound).all()), (level, tuple(q.shape), tuple(k.shape), q.dtype, float(err.max()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_decode_attention_equals_float32_attention(dtype):
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 9, 3, 1, 70, 64), (1, 4, 4, 1, 1, 64), (2, 8, 1, 1, 33, 128), (2, 6, 2, 2, 19, 48),
              (1, 4, 2, 1, 5, 16), (2, 4, 2, 3, 9, 40), (1, 2, 1, 1, 300, 80)]  # 40: off the SIMD path
    for b, h, kvh, t, s, d in shapes:
        q, k, v = _qkv(b, h, kvh, t, s, d, dtype, gen)
        for level in _each_isa():
            _check(q, k, v, d ** -0.5, level)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_split_key_ranges_equal_float32_attention(dtype):
    """Few (batch, KV head) pairs for the threads (batch-1 decode): each pair runs as several
    key-range items whose partial softmaxes are combined; equal to the reference at every level,
    for 2, 3 and 4 threads, several query tokens, ranges of unequal length."""
    gen = torch.Generator().manual_seed(7)
    shapes = [(1, 9, 3, 1, 600, 64), (1, 4, 1, 2, 513, 64), (2, 6, 3, 1, 777, 32), (1, 2, 1, 1, 260, 16)]
    threads = torch.get_num_threads()
    try:
        for n in (2, 3, 4):
            torch.set_num_threads(n)
            for b, h, kvh, t, s, d in shapes:
                q, k, v = _qkv(b, h, kvh, t, s, d, dtype, gen)
                for level in _each_isa():
                    _check(q, k, v, d ** -0.5, level)
    finally:
        torch.set_num_threads(threads)


def test_decode_attention_extreme_scores_and_layouts():
    """Scores of +-1e3 (softmax of one dominant key, others underflowing to 0 in exp), a key layout
    with the head dimension outermost (transposed buffer), and a non-contiguous last dimension
    (copied by the op) all match the reference."""
    gen = torch.Generator().manual_seed(1)
    q, k, v = _qkv(2, 4, 2, 1, 37, 64, torch.float32, gen, scale=30.0)
    kt = torch.randn(2, 37, 2, 64, generator=gen).transpose(1, 2)  # strides of a [B, S, KVH, D] buffer
    vs = torch.randn(2, 2, 37, 128, generator=gen)[..., ::2]  # last-dim stride 2
    for level in _each_isa():
        _check(q, k, v, 1.0, level)
        _check(q, kt, v, 0.125, level)
        _check(q, k, vs, 0.125, level)


def test_decode_attention_bad_operands_fail():
    gen = torch.Generator().manual_seed(2)
    q, k, v = _qkv(1, 6, 4, 1, 5, 16, torch.float32, gen)  # 6 heads over 4 KV heads
    with pytest.raises(RuntimeError, match="dividing"):
        attention.decode_attention(q, k, v, 0.25)
    q, k, v = _qkv(1, 4, 2, 1, 5, 16, torch.float32, gen)
    with pytest.raises(RuntimeError, match="share a dtype"):
        attention.decode_attention(q, k.double(), v, 0.25)
    with pytest.raises(RuntimeError, match="tokens"):
        attention.decode_attention(q, k[:, :, :0], v[:, :, :0], 0.25)


def _greedy_logits(model, ids, steps, cache, tokens=None):
    """Next-token logits [steps + 1, B, V] of greedy decoding (or of feeding ``tokens`` [steps, B, 1]),
    the tokens fed, and the cache."""
    key, extra = cache_kwargs(model)
    kw = {key: cache} if cache is not None else {}
    out = model(input_ids=ids, use_cache=True, **kw, **extra)
    logits, cache, fed = [out.logits[:, -1].float()], out[key], []
    for i in range(steps):
        nxt = logits[-1].argmax(-1, keepdim=True) if tokens is None else tokens[i]
        fed.append(nxt)
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra)
        logits.append(out.logits[:, -1].float())
        cache = out[key]
    return torch.stack(logits), fed, cache


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_andactl_sdpa_decode_equals_sdpa(dtype):
    """A tiny GQA llama (head size 16): the 300 greedy steps SDPA takes past an 8-token prompt, fed
    to the kernel and the reserved cache (crossing its first growth), give SDPA's logits (float32:
    to 1e-5; bf16: within bf16 rounding of the activations); the kernel ran at every step."""
    model = tiny_model("llama", dtype)[0]
    ids = torch.randint(0, model.config.vocab_size, (3, 8), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ref, tokens, ref_cache = _greedy_logits(model, ids, 300, None)
        calls = []
        real = attention.decode_attention
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(attention, "decode_attention", lambda *a: calls.append(1) or real(*a))
            with decode_attention.enabled(model):
                switched = attention.vectorized(16)  # else (no AVX-512): left on SDPA
                assert model.config._attn_implementation == (decode_attention.NAME if switched else "sdpa")
                got, _, cache = _greedy_logits(model, ids, 300, reserved_cache(model), tokens)
        assert model.config._attn_implementation == "sdpa"  # restored
    assert len(calls) == (300 * model.config.num_hidden_layers if switched else 0)
    tol = 1e-5 if dtype == torch.float32 else 0.02 * float(ref.abs().max())  # bf16: observed 0.9%
    torch.testing.assert_close(got, ref, atol=tol, rtol=0)
    assert isinstance(cache.layers[0], ReservedLayer) and cache.layers[0].keys.shape[-2] == 308
    assert cache.layers[0]._buf_k.shape[-2] > 308  # grew once, with room to spare
    torch.testing.assert_close(cache.layers[1].keys, ref_cache.layers[1].keys, atol=1e-5 if dtype == torch.float32
                               else 0.05, rtol=0)


def test_andactl_sdpa_padded_batch_falls_back_to_sdpa():
    """Left-padded prompts have an attention mask at every step: the kernel is never called and
    generation equals SDPA's token for token (float32)."""
    model = tiny_model("llama")[0]
    ids = torch.randint(2, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    kw = dict(attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0)
    with torch.inference_mode():
        ref = model.generate(ids, **kw)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(attention, "decode_attention", lambda *a: pytest.fail("kernel called with a mask"))
            with decode_attention.enabled(model):
                got = model.generate(ids, **kw, **{cache_kwargs(model)[0]: reserved_cache(model)})
    assert torch.equal(got, ref)


def test_reserved_cache_matches_dynamic_cache_through_crop_and_reorder():
    from transformers.cache_utils import DynamicCache

    gen = torch.Generator().manual_seed(5)
    ref, res = DynamicCache(), reserved_cache(tiny_model("llama")[0])
    for t in (5, 1, 1, 300, 1):  # 300 crosses the first buffer's room
        k, v = torch.randn(2, 2, t, 16, generator=gen), torch.randn(2, 2, t, 16, generator=gen)
        for c in (ref, res):
            c.update(k, v, 0)
        assert torch.equal(res.layers[0].keys, ref.layers[0].keys)
        assert torch.equal(res.layers[0].values, ref.layers[0].values)
    for op in (lambda c: c.crop(-4), lambda c: c.batch_select_indices(torch.tensor([1, 0])),
               lambda c: c.batch_repeat_interleave(2)):
        for c in (ref, res):
            op(c)
        k, v = torch.randn(*ref.layers[0].keys.shape[:2], 1, 16, generator=gen), None
        v = torch.randn_like(k)
        for c in (ref, res):
            c.update(k, v, 0)
        assert torch.equal(res.layers[0].keys, ref.layers[0].keys)
        assert torch.equal(res.layers[0].values, ref.layers[0].values)
        assert res.get_seq_length() == ref.get_seq_length()


def test_reserved_cache_declines_sliding_window_models():
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=1, sliding_window=8)
    assert reserved_cache(MistralForCausalLM(cfg)) is None
    assert reserved_cache(tiny_model("qwen2")[0]) is not None  # Qwen2: sliding window configured but off
