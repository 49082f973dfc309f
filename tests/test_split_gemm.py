"""split_gemm (kernels/split_gemm.py): the C++ packing equals the torch reference bit for bit, and
split_mm is within its documented bound of the float64 product at every SIMD level this CPU has
(AMX-BF16 tiles where present, software tiles elsewhere and under "amx-emulated"); the recovery
loss on packed heads equals the loss on torch's float32 GEMM."""
from __future__ import annotations

import pytest
import torch

from andactl.kernels import split_gemm as sg

build = pytest.importorskip("andactl.kernels.build")
_RES = build.load()
pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")

ISAS = ("scalar", "avx2", "avx512", "amx")
# (M, K, N): single values, edges of every tile / block, a reduction long enough to run in chunks and
# to be split between threads (few output columns), a wide output
SHAPES = [(1, 1, 1), (5, 7, 3), (37, 70, 100), (64, 64, 64), (40, 2100, 45), (33, 96, 250)]


def _levels() -> list[str]:
    detected = build.cpu_isa_info().split()[0].split("=")[1]
    return [*ISAS[: ISAS.index(detected) + 1], "amx-emulated"]


def _awkward(shape, seed: int) -> torch.Tensor:
    """Normal values with zeros, negatives, magnitudes over 2^±40 and values below 2^-126 mixed in."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(shape, generator=g)
    flat = v.view(-1)
    n = flat.numel()
    picks = torch.randperm(n, generator=g)[: max(1, n // 10)]
    specials = torch.tensor([0.0, -0.0, 2.0 ** 40, -(2.0 ** -40), 1e-39, -3e-40, 1.0 + 2.0 ** -20])
    flat[picks] = specials[torch.arange(picks.numel()) % specials.numel()]
    return v


def _product(x, w, transposed):
    b = (w.t() if transposed else w).double()
    return x.double() @ b, x.double().abs() @ b.abs()


def _run(x, packed, n, out=None):
    out = torch.full((x.shape[0], n), float("nan")) if out is None else out
    work = torch.empty(sg.work_size(x.shape[0], x.shape[1]), dtype=torch.bfloat16)
    torch.ops.andactl.split_mm(x, packed, out, work)
    return out


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_pack_equals_reference(shape, transposed):
    _, k, n = shape
    w = _awkward((n, k) if transposed else (k, n), seed=k + n)
    got = torch.ops.andactl.split_pack(w, transposed)
    want = sg.split_pack_reference(w, transposed)
    assert got.shape == want.shape == (sg._blocks(n), sg._steps(k), 4, 16, 32)
    assert torch.equal(got.view(torch.int16), want.view(torch.int16))
    hi, lo = sg.unpack_reference(got, k, n)
    b = (w.t() if transposed else w).float()
    small = b.abs() < sg.MIN_NORMAL
    assert torch.equal(hi[small], torch.zeros_like(hi[small])) and torch.equal(lo[small], torch.zeros_like(lo[small]))
    # hi + lo holds 16 significant bits: within 2^-16 of every normal value
    assert ((hi + lo - b).abs() <= 2.0 ** -16 * b.abs())[~small].all()


@pytest.mark.parametrize("transposed", [True, False])
def test_split_mm_within_bound_at_every_level(transposed, monkeypatch):
    for level in _levels():
        monkeypatch.setenv("ANDA_CPU_ISA", level)
        for m, k, n in SHAPES:
            x = torch.randn(m, k, generator=torch.Generator().manual_seed(m * k))
            w = torch.randn((n, k) if transposed else (k, n), generator=torch.Generator().manual_seed(n))
            packed = torch.ops.andactl.split_pack(w, transposed)
            got = _run(x, packed, n).double()
            exact, mag = _product(x, w, transposed)
            err = (got - exact).abs()
            assert (err <= sg.ERROR_BOUND * mag).all(), (level, m, k, n, float((err / mag).max()))
            ref = torch.empty(m, n)
            sg.split_mm_reference(x, packed, ref, None)  # the same split arithmetic, summed in float64
            assert ((got - ref.double()).abs() <= 2.0 ** -20 * mag).all(), (level, m, k, n)


def test_split_mm_strided_rows_and_short_reductions(monkeypatch):
    """x and out as row slices of wider tensors (row strides != widths); K = 0 gives zeros."""
    for level in _levels():
        monkeypatch.setenv("ANDA_CPU_ISA", level)
        big_x = torch.randn(50, 90)
        x = big_x[3:40, 5:75]  # [37, 70], row stride 90
        w = torch.randn(100, 70)
        big_out = torch.full((37, 130), 7.0)
        out = big_out[:, 10:110]
        _run(x, torch.ops.andactl.split_pack(w, True), 100, out=out)
        exact, mag = _product(x, w, True)
        assert ((out.double() - exact).abs() <= sg.ERROR_BOUND * mag).all(), level
        assert torch.equal(big_out[:, :10], torch.full((37, 10), 7.0))
        assert torch.equal(big_out[:, 110:], torch.full((37, 20), 7.0))
        empty = _run(torch.empty(4, 0), torch.ops.andactl.split_pack(torch.empty(3, 0), True), 3)
        assert torch.equal(empty, torch.zeros(4, 3))


def test_vector_packing_equals_scalar_packing(monkeypatch):
    """The AVX-512 BF16 split of x (levels avx512 / amx) gives the scalar split's bits: over the
    same software tiles (levels avx512 and avx2), every output is identical."""
    levels = _levels()
    if "avx512" not in levels:
        pytest.skip("CPU lacks AVX-512")
    x = _awkward((37, 70), seed=3)
    w = torch.randn(100, 70)
    packed = torch.ops.andactl.split_pack(w, True)
    outs = {}
    for level in ("avx2", "avx512"):
        monkeypatch.setenv("ANDA_CPU_ISA", level)
        outs[level] = _run(x, packed, 100)
    assert torch.equal(outs["avx2"], outs["avx512"])


def _loss_case(vocab, n, seed=0):
    from andactl.passes.recover_loss import IGNORE

    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(40, vocab, bias=False)
    t_head = torch.nn.Linear(56, vocab, bias=True)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, 40, generator=g) * 0.3)
        t_head.weight.copy_(torch.randn(vocab, 56, generator=g) * 0.3)
        t_head.bias.copy_(torch.randn(vocab, generator=g))
    h = torch.randn(n, 40, generator=g, requires_grad=True)
    h_t = torch.randn(n, 56, generator=g)
    labels = torch.randint(0, vocab, (n,), generator=g)
    labels[::3] = IGNORE
    return head, t_head, h, h_t, labels


@pytest.mark.parametrize("vocab", [300, 320])  # 300: the last chunk's tiles need their own buffer
@pytest.mark.parametrize("topk", [False, True])
def test_head_loss_on_packed_heads_equals_float32_gemm(vocab, topk):
    from andactl.passes.recover_loss import SplitHeads, head_loss
    from andactl.passes.recover_topk import topk_of_logits

    head, t_head, h, h_t, labels = _loss_case(vocab, 70)
    kw = dict(kd_weight=1.0, ce_weight=0.5, chunk=32)
    if topk:
        with torch.no_grad():
            kw["teacher_topk"] = topk_of_logits(t_head(h_t).float(), 8)
    else:
        kw.update(h_teacher=h_t, teacher_head=t_head)
    results = []
    for splits in (None, SplitHeads()):
        h.grad = None
        stats: dict = {}
        loss = head_loss(h, head, labels, stats=stats, splits=splits, **kw)
        loss.backward()
        results.append((float(loss.detach()), h.grad.clone(), stats))
    (l0, g0, s0), (l1, g1, s1) = results
    assert abs(l1 - l0) <= 1e-5 * abs(l0)
    assert (g1 - g0).abs().max() <= 1e-4 * g0.abs().max()
    assert abs(s1["kl"] - s0["kl"]) <= 1e-5 * abs(s0["kl"]) and abs(s1["ce"] - s0["ce"]) <= 1e-5 * abs(s0["ce"])


def test_split_heads_repack_after_an_update():
    """SplitHeads.get packs a weight once, and again after an in-place change of its values."""
    from andactl.passes.recover_loss import SplitHeads

    w = torch.randn(64, 48)
    heads = SplitHeads()
    first = heads.get(w)
    assert heads.get(w) is first
    with torch.no_grad():
        w.mul_(2.0)
    again = heads.get(w)
    assert again is not first
    x = torch.randn(5, 48)
    out = torch.empty(5, 64)
    again.rows_times(x, out, heads.work(5, 48, torch.device("cpu")))
    exact, mag = _product(x, w, True)
    assert ((out.double() - exact).abs() <= sg.ERROR_BOUND * mag).all()
