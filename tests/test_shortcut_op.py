"""``andactl::shortcut_add`` (a SliceGPT residual shortcut of a decode step, r @ S + u): equal to the
exact product within float32 summation order plus the dtype's roundings at every SIMD level this
CPU has, AVX2 and AVX-512 bit for bit the same, leading dimensions and awkward widths, bad operands
refused; the lean decode step of a sliced bfloat16 model runs it and stays within rounding of
transformers' forward; so do the SliceGPT layers themselves (transformers' forward of OPT, Phi and
Phi-3, whose decode steps are not lean) for the few rows of a decode step, never where autograd
records (recovery trains through them) or for many rows."""
from __future__ import annotations

import pytest
import torch
from test_kernels_cpp import _RES, _each_isa

from tiny_models import tiny_sliced

from andactl.kernels import shortcut

pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")

ROUNDING = {torch.float32: 0.0, torch.bfloat16: 2 ** -8, torch.float16: 2 ** -10}  # relative, per rounding
# (rows, din, dout): one to six tokens (tiles of 1..4 and a rest), widths on and off the vector
# blocks (AVX-512 blocks of 384 / tokens columns, AVX2 96 / tokens and single vectors of 8, tails)
SHAPES = [(1, 432, 432), (1, 432, 576), (4, 432, 432), (2, 37, 53), (3, 9, 130), (5, 64, 401), (6, 16, 7), (1, 1, 1)]


def _operands(rows, din, dout, dtype, gen, lead=()):
    r = torch.randn(*lead, rows, din, generator=gen).to(dtype)
    S = (torch.randn(din, dout, generator=gen) / din ** 0.5).to(dtype)
    u = (torch.randn(*lead, rows, dout, generator=gen) * 2).to(dtype)
    return r, S, u


def _check(r, S, u, got):
    exact = r.double() @ S.double()
    cond = r.double().abs() @ S.double().abs()
    dt = r.dtype
    bound = r.shape[-1] * 2 ** -24 * cond + ROUNDING[dt] * (exact.abs() + (exact + u.double()).abs()) + 1e-30
    assert got.dtype == dt and got.shape == u.shape
    err = (got.double() - (exact + u.double())).abs()
    assert bool((err <= bound * 1.0001).all()), (dt, tuple(S.shape), float(err.max()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_shortcut_add_equals_the_product_at_every_level(dtype):
    gen = torch.Generator().manual_seed(0)
    for rows, din, dout in SHAPES:
        r, S, u = _operands(rows, din, dout, dtype, gen)
        by_level = {}
        for level in _each_isa():
            got = torch.ops.andactl.shortcut_add(r, S, u)
            _check(r, S, u, got)
            by_level[level] = got
        if "avx2" in by_level and "avx512" in by_level:  # the same fused multiply-adds in the same order
            assert torch.equal(by_level["avx2"], by_level["avx512"]), (dtype, rows, din, dout)


def test_leading_dims_views_and_threads():
    gen = torch.Generator().manual_seed(1)
    r, S, u = _operands(3, 432, 432, torch.bfloat16, gen, lead=(2,))
    got = torch.ops.andactl.shortcut_add(r, S, u)
    assert got.shape == (2, 3, 432)
    _check(r, S, u, got)
    rows = torch.cat([torch.ops.andactl.shortcut_add(r[b, t:t + 1], S, u[b, t:t + 1]) for b in range(2) for t in range(3)])
    assert torch.equal(rows, got.reshape(6, 432))  # each row is the same whatever tile it ran in
    wide = torch.randn(432, 864, generator=gen).to(torch.bfloat16)[:, ::2]  # a strided S
    assert torch.equal(torch.ops.andactl.shortcut_add(r, wide, u), torch.ops.andactl.shortcut_add(r, wide.contiguous(), u))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = torch.ops.andactl.shortcut_add(r, S, u)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, got)  # column blocks split over threads give the same bits


def test_bfloat16_matches_torch_within_one_rounding():
    gen = torch.Generator().manual_seed(2)
    r, S, u = _operands(1, 432, 432, torch.bfloat16, gen)
    got, ref = torch.ops.andactl.shortcut_add(r, S, u).float(), shortcut.shortcut_add_reference(r, S, u).float()
    assert ((got - ref).abs() <= 2 ** -7 * ref.abs() + 2 ** -7 * (r.float() @ S.float()).abs()).all()


def test_empty_operands():
    u = torch.randn(2, 5).bfloat16()
    assert torch.equal(torch.ops.andactl.shortcut_add(torch.zeros(2, 0).bfloat16(), torch.zeros(0, 5).bfloat16(), u), u)
    assert torch.ops.andactl.shortcut_add(torch.zeros(0, 3), torch.ones(3, 4), torch.zeros(0, 4)).shape == (0, 4)


@pytest.mark.parametrize("r_shape,S_shape,u_shape,dtypes,match", [
    ((1, 8), (9, 4), (1, 4), (torch.float32,) * 3, "din the last dimension of r"),
    ((1, 8), (8, 4), (1, 5), (torch.float32,) * 3, "u must have r's shape"),
    ((1, 8), (8, 4), (1, 4), (torch.float32, torch.bfloat16, torch.float32), "share a dtype"),
    ((1, 8), (8, 4), (1, 4), (torch.float64,) * 3, "float32, bfloat16 or float16"),
])
def test_bad_operands_are_refused(r_shape, S_shape, u_shape, dtypes, match):
    r, S, u = (torch.zeros(s, dtype=d) for s, d in zip((r_shape, S_shape, u_shape), dtypes))
    with pytest.raises(RuntimeError, match=match):
        torch.ops.andactl.shortcut_add(r, S, u)


def _op_calls(fn) -> int:
    with torch.profiler.profile() as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "andactl::shortcut_add")


@pytest.mark.parametrize("family", ["opt", "phi", "phi3", "llama"])
def test_sliced_layers_run_the_op_for_decode_rows(family):
    """A bfloat16 SliceGPT model's own layers (transformers' forward, no lean step) run the op for
    one token of 2 sequences (every shortcut of every layer, once) and torch's matmul for 2 x 16
    tokens; the op's logits are within bfloat16 rounding of the same model's with torch's matmul."""
    model = tiny_sliced(family, 0.25).model.to(torch.bfloat16).eval()
    layers = model.model.layers if hasattr(model.model, "layers") else model.model.decoder.layers
    per_model = sum(len(layer.shortcuts) for layer in layers)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = {}
        assert _op_calls(lambda: out.setdefault("op", model(input_ids=ids[:, :1]).logits)) == per_model
        assert _op_calls(lambda: model(input_ids=ids)) == 0
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(shortcut, "has_cpu_kernel", lambda: False)
            ref = model(input_ids=ids[:, :1]).logits.float()
    torch.testing.assert_close(out["op"].float(), ref, atol=0.02 * float(ref.abs().max()), rtol=0)


def test_residual_add_leaves_autograd_to_torch():
    """Where autograd records (r or u requires grad: recovery), residual_add runs torch's matmul,
    whose gradient flows (dr = du S^T); without grad, the same rows run the op."""
    gen = torch.Generator().manual_seed(4)
    r, S, u = _operands(2, 48, 40, torch.bfloat16, gen)
    r.requires_grad_(True)
    out = {}
    assert _op_calls(lambda: out.setdefault("y", shortcut.residual_add(r, S, u))) == 0
    out["y"].float().sum().backward()
    torch.testing.assert_close(r.grad.float(), torch.ones(2, 40) @ S.float().T, atol=2 ** -6, rtol=2 ** -7)
    with torch.no_grad():
        assert _op_calls(lambda: shortcut.residual_add(r, S, u)) == 1
