"""The C++ CPU kernels of andactl equal the pure-torch reference (bit-exact codec, rtol 1e-5
GEMM) on a grid of shapes, mantissa bits and awkward values, for every SIMD path this CPU has, and
for the AMX GEMM over software tiles ("amx-emulated", any CPU)."""
from __future__ import annotations

import pytest
import torch

from andactl.kernels import ops, prepack, reference
from andactl.formats.int4_layout import pack_int4, padded_k

build = pytest.importorskip("andactl.kernels.build")
_RES = build.load()  # the CUDA flavour (GPU machines) holds the CPU kernels too
pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")

ISAS = ("scalar", "avx2", "avx512", "amx")
EMULATED = "amx-emulated"  # the AMX tile GEMM over software tiles: runs on every CPU


def _detected() -> str:
    return build.cpu_isa_info().split()[0].split("=")[1] if _RES.ok else "scalar"


def _available_isas() -> list[str]:
    return [*ISAS[: ISAS.index(_detected()) + 1], EMULATED] if _RES.ok else []


@pytest.fixture(params=(*ISAS, EMULATED))
def isa(request, monkeypatch):
    """Cap the extension's SIMD level (read per call); skip levels this CPU lacks."""
    if request.param not in _available_isas():
        pytest.skip(f"CPU lacks {request.param} (detected {_detected()})")
    monkeypatch.setenv("ANDA_CPU_ISA", request.param)
    assert build.cpu_isa_info().endswith(f"selected={request.param}")
    return request.param


def _has_avx512bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            return " avx512_bf16" in fh.read()
    except OSError:
        return False


NO_BF16 = "avx512-nobf16"  # AVX-512 without AVX512-BF16 (ANDA_NO_AVX512BF16), on CPUs that have it


def _each_isa():
    """Yield every SIMD level this CPU has and the emulated AMX one, with the extension set to it
    (ANDA_CPU_ISA); on a CPU with AVX512-BF16 also the AVX-512 level without it (the paths of
    AVX-512 CPUs that lack it)."""
    levels = _available_isas()
    extra = [NO_BF16] if "avx512" in levels and _has_avx512bf16() else []
    for level in [*levels, *extra]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ANDA_CPU_ISA", "avx512" if level == NO_BF16 else level)
            if level == NO_BF16:
                mp.setenv("ANDA_NO_AVX512BF16", "1")
            yield level


def _awkward(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Values spanning 1e-7..6e4 in one group, subnormals, +-0, zero groups, random signs."""
    x = torch.randn(shape, generator=gen) * torch.exp(torch.randn(shape, generator=gen) * 3)
    flat = x.view(-1)
    n = flat.numel()
    if n >= 8:
        flat[0], flat[1], flat[2], flat[3] = 6e4, 1e-7, -0.0, -3e-6  # range + subnormal + -0
        flat[4], flat[5] = 5.9e-8, -6.1e-5
    if shape[-1] >= 128:
        x[..., 64:128] = 0.0  # an all-zero group
        x[..., 70] = -0.0
    return x.clamp(-6e4, 6e4)  # bf16 rounds 65504 up to 65536 (overflow)


def _cpp_pack(x, m, rounding="truncate"):
    return torch.ops.andactl.anda_pack(x, m, rounding)


@pytest.mark.parametrize("lead", [(), (3,), (2, 5)])
@pytest.mark.parametrize("k", [1, 63, 64, 100, 576])
def test_pack_unpack_bit_exact(lead, k):  # the compressor: scalar and AVX2 versions
    gen = torch.Generator().manual_seed(k * 7 + len(lead))
    x = _awkward((*lead, k) if lead or k else (k,), gen)
    for m in range(1, 17):
        for rounding in ("truncate", "nearest"):
            for dt in (torch.float32, torch.float16, torch.bfloat16):
                xd = x.to(dt)
                w_ref, e_ref = ops._pack_ref(xd, m, rounding)
                for level in _each_isa():
                    w, e = _cpp_pack(xd, m, rounding)
                    assert w.dtype == torch.int64 and e.dtype == torch.uint8
                    assert torch.equal(w, w_ref), (m, rounding, dt, level)
                    assert torch.equal(e, e_ref), (m, rounding, dt, level)
        d_ref = ops._unpack_ref(w_ref, e_ref, m, k)
        d = torch.ops.andactl.anda_unpack(w_ref, e_ref, m, k)
        assert d.dtype == torch.float32
        assert torch.equal(d.view(torch.int32), d_ref.view(torch.int32)), m  # bitwise, -0.0 too


def test_pack_k4096():
    gen = torch.Generator().manual_seed(1)
    x = _awkward((4, 4096), gen)
    assert len(ISAS[: ISAS.index(_detected()) + 1]) >= 2 or _detected() == "scalar"  # scalar and SIMD both run
    for m in (1, 4, 8, 16):
        w_ref, e_ref = ops._pack_ref(x, m)
        for level in _each_isa():
            w, e = _cpp_pack(x, m)
            assert torch.equal(w, w_ref) and torch.equal(e, e_ref), (m, level)


def test_pack_rejects_nonfinite():
    for bad in (float("nan"), float("inf"), 65520.0, 7e4):
        x = torch.ones(2, 70)
        x[1, 3] = bad
        with pytest.raises(RuntimeError, match="float16|NaN"):
            _cpp_pack(x, 4)
    with pytest.raises(RuntimeError, match="mantissa_bits"):
        _cpp_pack(torch.ones(3, 64), 17)


def _weights(n, k, gs, asym, gen):
    kw = padded_k(k, gs)
    codes = torch.randint(0, 16, (n, kw), generator=gen, dtype=torch.uint8)
    zeros = torch.randint(0, 16, (n, kw // gs), generator=gen, dtype=torch.uint8) if asym else None
    zfull = (zeros if asym else torch.full((n, kw // gs), 8, dtype=torch.uint8)).repeat_interleave(gs, 1)
    codes[:, k:] = zfull[:, k:]  # padding codes equal the zero point
    scales = torch.rand(n, kw // gs, generator=gen) * 0.1 + 1e-3
    return pack_int4(codes), scales, zeros


def _check_gemm(x, m, k, n, gs, asym, gen, weights=None):
    """At every SIMD level, the canonical C++ GEMM, the prepacked C++ GEMM and the prepacked
    reference equal the PE reference (rtol 1e-5); the C++ prepack equals the pure-torch one.
    `weights` (packed, scales, zeros) replaces the random ones of _weights."""
    wp, sc, z = weights if weights is not None else _weights(n, k, gs, asym, gen)
    words, exps = ops._pack_ref(x, m)
    ref = reference.anda_gemm_reference(words, exps, m, k, wp, sc, z, gs)
    wpp = prepack.prepack_reference(wp)
    scale = ref.abs().max().clamp(min=1e-30)
    results = [prepack._gemm_prepacked_ref(words, exps, m, k, wpp, sc, z, gs, n)]
    for _level in _each_isa():
        assert torch.equal(torch.ops.andactl.int4_prepack(wp, sc, z, gs, k), wpp)
        results.append(torch.ops.andactl.anda_gemm(words, exps, m, k, wp, sc, z, gs))
        results.append(torch.ops.andactl.anda_gemm_prepacked(words, exps, m, k, wpp, sc, z, gs, n))
    for got in results:
        assert got.shape == ref.shape and got.dtype == torch.float32
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=float(scale) * 1e-6)


@pytest.mark.parametrize("m", list(range(1, 17)))
def test_gemm_grid(m):  # every SIMD level inside _check_gemm
    gen = torch.Generator().manual_seed(m)
    cases = [((), 1, 64, 17, False), ((3,), 63, 64, 1, True), ((2, 5), 100, 128, 17, False),
             ((9,), 576, 256, 64, True), ((2, 5), 576, 64, 17, True), ((5,), 200, 128, 80, False),
             ((2,), 130, 64, 33, True), ((300,), 130, 64, 33, True),  # 300: several AMX tiles and chunks
             ((13,), 200, 64, 40, True),  # 13: one AMX token tile at every chunk count
             ((7,), 200, 64, 40, True), ((2, 4), 576, 128, 48, False)]  # 7, 8: 8-row AMX tiles (C > 1)
    if m in (1, 7, 8, 15, 16):
        cases.append(((3,), 4096, 128, 17, False))
    for lead, k, gs, n, asym in cases:
        _check_gemm(_awkward((*lead, k), gen), m, k, n, gs, asym, gen)


@pytest.mark.parametrize("m", [4, 8, 15])
def test_gemm_zero_points_above_15(m):
    """uint8 zero points 16..255 (the op accepts any): the AMX path folds min(z, 15) into its
    weight tiles and subtracts the rest times the activation sums; every level equals the
    reference, on 40 tokens (AMX tiles) and on 3 (micro-kernels)."""
    gen = torch.Generator().manual_seed(100 + m)
    n, k, gs = 33, 256, 64
    codes = torch.randint(0, 16, (n, k), generator=gen, dtype=torch.uint8)
    zeros = torch.randint(0, 256, (n, k // gs), generator=gen, dtype=torch.uint8)
    zeros[:, 0] = torch.randint(0, 16, (n,), generator=gen, dtype=torch.uint8)  # mixed blocks
    scales = torch.rand(n, k // gs, generator=gen) * 0.1 + 1e-3
    for t in (40, 3):
        _check_gemm(_awkward((t, k), gen), m, k, n, gs, True, gen, weights=(pack_int4(codes), scales, zeros))


@pytest.mark.parametrize("m", [5, 6, 7, 8, 9, 10, 11])
def test_gemm_largest_group_sums(m):
    """Every code 15 against every mantissa at its largest magnitude (2^m - 1, one sign per
    token): the int16 sub-sums of the AVX2 kernel reach their bound (M <= 6 sums a whole group in
    int16: 16 k-quads x 2 x 15 x 63 = 30240; M = 7 and the low chunk of M = 8 need two halves); the
    AMX path's folded high chunk (M = 8..10 on more than 16 tokens: times 16 against weights times
    8) reaches 16 x 7 and 8 x 15 (M = 11: the unfolded two chunks); every level still equals the
    reference, on 4 tokens (token tiles), on 1 and on 40 (AMX: several 16-token tiles, folded)."""
    gen = torch.Generator().manual_seed(200 + m)
    n, k, gs = 33, 256, 64
    codes = torch.full((n, k), 15, dtype=torch.uint8)
    zeros = torch.randint(0, 16, (n, k // gs), generator=gen, dtype=torch.uint8)
    scales = torch.rand(n, k // gs, generator=gen) * 0.1 + 1e-3
    for t in (4, 1, 40):
        sign = torch.tensor([1.0, -1.0, -1.0, 1.0] * 10)[:t].unsqueeze(1)
        x = sign * torch.full((t, k), 1.999)  # the group maximum with every mantissa bit set
        words, exps = ops._pack_ref(x, m)
        # every mantissa is 2^m - 1: 1.999 decodes to (2^m - 1) / 2^(m - 1)
        top = (2.0 ** m - 1) / 2.0 ** (m - 1)
        assert torch.equal(ops._unpack_ref(words, exps, m, k), sign * torch.full((t, k), top))
        for z in (zeros, None):
            _check_gemm(x, m, k, n, gs, z is not None, gen, weights=(pack_int4(codes), scales, z))


def test_gemm_empty_and_zero_groups():
    gen = torch.Generator().manual_seed(5)
    _check_gemm(torch.zeros(4, 200), 6, 200, 17, 64, True, gen)
    wp, sc, z = _weights(5, 64, 64, False, gen)
    words, exps = ops._pack_ref(torch.ones(0, 64), 4)
    for _level in _each_isa():
        assert torch.ops.andactl.anda_gemm(words, exps, 4, 64, wp, sc, z, 64).shape == (0, 5)
        wpp = torch.ops.andactl.int4_prepack(wp, sc, z, 64, 64)
        assert torch.ops.andactl.anda_gemm_prepacked(words, exps, 4, 64, wpp, sc, z, 64, 5).shape == (0, 5)


@pytest.mark.parametrize("n,k,gs", [(1, 64, 64), (16, 128, 128), (17, 100, 128), (70, 576, 64), (48, 700, 256)])
def test_prepack_layout(isa, n, k, gs):
    """int4_prepack (C++) == the pure-torch layout, which round-trips to the canonical bytes and
    puts row 16b+r / 16b+8+r, column 64g+kk in the documented nibble."""
    gen = torch.Generator().manual_seed(n * 31 + k)
    wp, sc, z = _weights(n, k, gs, n % 2 == 1, gen)
    got = prepack.int4_prepack(wp, sc, z, gs, k)
    assert got.dtype == torch.uint8 and tuple(got.shape) == (-(-n // 16), padded_k(k, gs) // 64, 16, 32)
    assert torch.equal(got, prepack.prepack_reference(wp))
    assert torch.equal(prepack.unprepack_reference(got, n), wp)
    codes = ops.unpack_int4(wp)
    for row, col in ((0, 0), (n - 1, padded_k(k, gs) - 1), (n // 2, 33), (min(n - 1, 9), min(64 + 7, padded_k(k, gs) - 1))):
        b, r8, half = row // 16, row % 8, (row % 16) // 8
        g, kk = col // 64, col % 64
        p = kk // 2 if kk % 2 == 0 else 32 + kk // 2
        byte = int(got[b, g, p // 4, 4 * r8 + p % 4])
        assert (byte >> (4 * half)) & 15 == int(codes[row, col])


def test_prepacked_wrapper_errors():
    from andactl.errors import ConfigError

    gen = torch.Generator().manual_seed(2)
    wp, sc, z = _weights(20, 100, 64, True, gen)
    words, exps = ops._pack_ref(torch.randn(3, 100, generator=gen), 5)
    wpp = prepack.int4_prepack(wp, sc, z, 64, 100)
    torch.testing.assert_close(prepack.anda_gemm_prepacked(words, exps, 5, 100, wpp, sc, z, 64, 20),
                               ops.anda_gemm(words, exps, 5, 100, wp, sc, z, 64), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="w_prepacked must be uint8"):
        prepack.anda_gemm_prepacked(words, exps, 5, 100, wpp, sc, z, 64, 40)
    with pytest.raises(ConfigError, match="w_scales"):
        prepack.anda_gemm_prepacked(words, exps, 5, 100, wpp, sc[:, :1], z, 64, 20)
    with pytest.raises(ConfigError, match="w_packed"):
        prepack.int4_prepack(wp[:, :10], sc, z, 64, 100)
    with pytest.raises(RuntimeError, match="w_prepacked must be uint8"):
        torch.ops.andactl.anda_gemm_prepacked(words, exps, 5, 100, wpp[:1], sc, z, 64, 20)


def test_opcheck():
    gen = torch.Generator().manual_seed(3)
    x = _awkward((3, 100), gen)
    torch.library.opcheck(torch.ops.andactl.anda_pack.default, (x, 5, "truncate"))
    words, exps = ops._pack_ref(x, 5)
    torch.library.opcheck(torch.ops.andactl.anda_unpack.default, (words, exps, 5, 100))
    wp, sc, z = _weights(17, 100, 128, True, gen)
    torch.library.opcheck(torch.ops.andactl.anda_gemm.default, (words, exps, 5, 100, wp, sc, z, 128))
    torch.library.opcheck(torch.ops.andactl.anda_gemm.default, (words, exps, 5, 100, wp, sc, None, 128))
    torch.library.opcheck(torch.ops.andactl.int4_prepack.default, (wp, sc, z, 128, 100))
    wpp = torch.ops.andactl.int4_prepack(wp, sc, z, 128, 100)
    torch.library.opcheck(torch.ops.andactl.anda_gemm_prepacked.default, (words, exps, 5, 100, wpp, sc, z, 128, 17))
    torch.library.opcheck(torch.ops.andactl.anda_gemm_prepacked.default,
                          (words[:1], exps[:1], 5, 100, wpp, sc, None, 128, 17))


def test_cpu_kernel_is_registered():
    assert torch._C._dispatch_has_kernel_for_dispatch_key("andactl::anda_gemm", "CPU")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("andactl::anda_pack", "CPU")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("andactl::int4_prepack", "CPU")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("andactl::anda_gemm_prepacked", "CPU")


def test_anda_linear_caches_prepacked_weight_out_of_state():
    """The prepacked weight is cached (same object across calls), absent from the state dict, and
    dropped on load_state_dict and on .to(); outputs equal the reference backend throughout."""
    from andactl.models.anda_linear import AndaLinear

    gen = torch.Generator().manual_seed(4)
    wp, sc, z = _weights(40, 150, 64, True, gen)
    mod = AndaLinear.from_int4(wp, sc, z, torch.randn(40, generator=gen), 150, 64, 7, backend="cpp")
    keys = set(mod.state_dict())
    x = torch.randn(2, 3, 150, generator=gen)
    y = mod(x)
    first = mod.prepacked_weight()
    assert first is not None and mod.prepacked_weight() is first
    assert set(mod.state_dict()) == keys == {"weight_packed", "weight_scale", "weight_zero_point", "bias"}
    ref = AndaLinear.from_int4(wp, sc, z, mod.bias, 150, 64, 7, backend="reference")
    torch.testing.assert_close(y, ref(x), rtol=1e-5, atol=1e-5)
    wp2, sc2, z2 = _weights(40, 150, 64, True, gen)
    mod.load_state_dict({"weight_packed": wp2, "weight_scale": sc2, "weight_zero_point": z2, "bias": mod.bias})
    assert mod._wpp_cache is None
    ref2 = AndaLinear.from_int4(wp2, sc2, z2, mod.bias, 150, 64, 7, backend="reference")
    torch.testing.assert_close(mod(x), ref2(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(mod.prepacked_weight(), prepack.prepack_reference(wp2))
    mod.to(torch.bfloat16)
    assert mod._wpp_cache is None and mod.weight_scale.dtype == torch.float32


def test_backend_resolution_and_set_backend():
    from andactl.errors import ConfigError
    from andactl.kernels import backend
    from andactl.models.anda_linear import AndaLinear

    info = backend.resolve_backend("auto", torch.device("cpu"))
    assert info.name == "cpp" and info.isa.startswith("detected=")
    assert backend.resolve_backend("cpp", "cpu").name == "cpp"
    assert backend.resolve_backend("reference", "cpu").name == "reference"
    with pytest.raises(ConfigError, match="unknown kernel backend"):
        backend.resolve_backend("fast", "cpu")
    if torch.version.cuda is None:
        with pytest.raises(ConfigError, match="backend 'cuda' is unavailable"):
            backend.resolve_backend("cuda", "cpu")
    d = backend.describe()
    assert d["cpp_extension"]["loaded"] is True and d["cpu_isa"] == build.cpu_isa_info()

    gen = torch.Generator().manual_seed(9)
    wp, sc, z = _weights(17, 100, 64, True, gen)
    model = torch.nn.Sequential(AndaLinear.from_int4(wp, sc, z, None, 100, 64, 6), torch.nn.ReLU(),
                                AndaLinear.from_int4(*_weights(5, 17, 64, False, gen), None, 17, 64, 6))
    x = torch.randn(4, 100, generator=gen)
    assert backend.set_backend(model, "cpp").name == "cpp"
    assert model[0].backend == model[2].backend == "cpp"
    y_cpp = model(x)
    backend.set_backend(model, "reference")
    assert model[0].backend == "reference"
    torch.testing.assert_close(y_cpp, model(x), rtol=1e-5, atol=1e-5)
