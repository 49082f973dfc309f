"""CUDA kernels of andactl equal the pure-torch reference (bit-exact codec, rtol 1e-5 GEMM)."""
from __future__ import annotations

import pytest
import torch

HAVE_CUDA = torch.version.cuda is not None and torch.cuda.is_available()
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not HAVE_CUDA, reason="needs a CUDA build of torch and a GPU")]


@pytest.fixture(scope="module")
def ext():
    from andactl.kernels import build
    res = build.load(cuda=True)
    assert res.ok, res.error[-4000:]
    return res


def _weights(n, k, gs, asym, gen):
    from andactl.formats.int4_layout import pack_int4, padded_k
    kw = padded_k(k, gs)
    codes = torch.randint(0, 16, (n, kw), generator=gen, dtype=torch.uint8)
    zeros = torch.randint(0, 16, (n, kw // gs), generator=gen, dtype=torch.uint8) if asym else None
    zfull = (zeros if asym else torch.full((n, kw // gs), 8, dtype=torch.uint8)).repeat_interleave(gs, 1)
    codes[:, k:] = zfull[:, k:]
    return pack_int4(codes), torch.rand(n, kw // gs, generator=gen) * 0.1 + 1e-3, zeros


@pytest.mark.parametrize("m", [1, 4, 7, 8, 12, 16])
@pytest.mark.parametrize("lead,k", [((), 1), ((3,), 63), ((2, 5), 100), ((7,), 576)])
def test_cuda_matches_reference(ext, m, lead, k):
    from andactl.kernels import ops, reference
    gen = torch.Generator().manual_seed(m * 1000 + k)
    x = (torch.randn(*lead, k, generator=gen) * torch.exp(torch.randn(*lead, k, generator=gen) * 3)).clamp(-6e4, 6e4)
    x.view(-1)[0] = -0.0
    for rounding in ("truncate", "nearest"):
        w_ref, e_ref = ops._pack_ref(x, m, rounding)
        w, e = torch.ops.andactl.anda_pack(x.cuda(), m, rounding)
        assert torch.equal(w.cpu(), w_ref) and torch.equal(e.cpu(), e_ref)
    d = torch.ops.andactl.anda_unpack(w, e, m, k).cpu()
    assert torch.equal(d.view(torch.int32), ops._unpack_ref(w_ref, e_ref, m, k).view(torch.int32))
    for gs, n, asym in ((64, 17, True), (128, 64, False)):
        wp, sc, z = _weights(n, k, gs, asym, gen)
        ref = reference.anda_gemm_reference(w_ref, e_ref, m, k, wp, sc, z, gs)
        got = torch.ops.andactl.anda_gemm(w, e, m, k, wp.cuda(), sc.cuda(), None if z is None else z.cuda(), gs)
        torch.testing.assert_close(got.cpu(), ref, rtol=1e-5, atol=float(ref.abs().max()) * 1e-6 + 1e-30)
