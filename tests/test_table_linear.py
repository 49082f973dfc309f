"""``andactl::table_linear`` (the quantized LM head computed from its INT8 / INT4 codes) equals
F.linear over the dequantized table within float32 summation order, at every SIMD level this
CPU has, for partial groups, groups that are not a multiple of 8, bias or none, bf16 in/out, token
counts across the kernel's 4-token tiles and 64-token blocks; bad operands fail with one line."""
from __future__ import annotations

import pytest
import torch
from test_kernels_cpp import _RES, _each_isa

from andactl.formats import table_quant as tq
from andactl.kernels import tables

pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")


def _bound(x, w, bias, rel):
    b = 0.0 if bias is None else bias.abs()
    return rel * (x.float().abs() @ w.abs().T + b) + 1e-30


@pytest.mark.parametrize("bits", [8, 4])
def test_table_linear_equals_dequantized_linear(bits):
    gen = torch.Generator().manual_seed(bits)
    assert tables.has_cpu_kernel()
    for rows, k, group in ((300, 576, 64), (70, 100, 32), (33, 130, 7), (17, 64, 64), (9, 8, 1)):
        w = torch.randn(rows, k, generator=gen) * torch.exp(torch.randn(rows, 1, generator=gen))
        packed, scale = tq.quantize(w, bits, group)
        wd = tq.dequantize(packed, scale, bits, k, group)
        for t, bias, dt in ((1, True, torch.float32), (5, False, torch.float32), (70, True, torch.float32),
                            (6, True, torch.bfloat16)):
            x = torch.randn(2, t, k, generator=gen).to(dt)
            b = torch.randn(rows, generator=gen) if bias else None
            ref = torch.nn.functional.linear(x.float(), wd, b)
            for level in _each_isa():
                got = tables.table_linear(x, packed, scale, bits, group, b)
                assert got.dtype == dt and got.shape == (2, t, rows)
                out_rounding = 2 ** -8 if dt == torch.bfloat16 else 0.0  # bf16: one rounding of y
                err = (got.float() - ref).abs()
                assert bool((err <= _bound(x, wd, b, 1e-5) + out_rounding * ref.abs()).all()), \
                    (level, rows, k, group, t, dt, float(err.max()))


def test_table_linear_rejects_bad_operands():
    packed, scale = tq.quantize(torch.randn(10, 64), 8, 64)
    x = torch.randn(3, 64)
    with pytest.raises(RuntimeError, match="bits must be 8 or 4"):
        tables.table_linear(x, packed, scale, 6, 64)
    with pytest.raises(RuntimeError, match="packed must be uint8"):
        tables.table_linear(torch.randn(3, 65), packed, scale, 8, 64)
    with pytest.raises(RuntimeError, match="scale must be float16"):
        tables.table_linear(x, packed, scale.float(), 8, 64)
    with pytest.raises(RuntimeError, match="bias must be"):
        tables.table_linear(x, packed, scale, 8, 64, torch.zeros(3))
    assert tables.table_linear(torch.zeros(0, 64), packed, scale, 8, 64).shape == (0, 10)
