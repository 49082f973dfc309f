"""``andactl::table_linear`` (the quantized LM head computed from its INT8 / INT4 codes) equals
F.linear over the dequantized table within float32 summation order, at every SIMD level this
CPU has, for partial groups, groups that are not a multiple of 8, widths K that end in a partial
16- / 8- / 32-column step of the vector and AMX paths (a sliced width rounded to 8), bias or none, bf16 in/out, token
counts across the kernel's token tiles and 64-token blocks and past the 32 tokens (bf16 rows: 10
where the CPU rounds the table to bf16 straight from the codes) from which the table is decoded in
chunks for torch's GEMM (bf16: within bf16 rounding of table and product); 3..16 bf16 tokens of an
INT8 or INT4 table on the AMX-BF16 path where the CPU has it (exact products, float32 sums per group);
bad operands fail with one line."""
from __future__ import annotations

import pytest
import torch
from test_kernels_cpp import _RES, _each_isa

from andactl.formats import table_quant as tq
from andactl.kernels import tables

pytestmark = pytest.mark.skipif(not _RES.ok, reason=f"C++ extension did not build: {_RES.reason}")


GEMM_TOKENS_BF16 = 10  # kGemmTokensBf16 in kernels/csrc/table_cpu.cpp: the loosest bound from here


def _bound(x, w, bias, rel):
    b = 0.0 if bias is None else bias.abs()
    return rel * (x.float().abs() @ w.abs().T + b) + 1e-30


@pytest.mark.parametrize("bits", [8, 4])
def test_table_linear_equals_dequantized_linear(bits):
    gen = torch.Generator().manual_seed(bits)
    assert tables.has_cpu_kernel()
    for rows, k, group in ((300, 576, 64), (70, 100, 32), (33, 130, 7), (17, 64, 64), (9, 8, 1),
                           (40, 576, 128), (21, 200, 48),  # partial last groups (16- / 8-wide paths)
                           (45, 456, 64), (19, 61, 32), (26, 1003, 128)):  # partial last vector steps
        w = torch.randn(rows, k, generator=gen) * torch.exp(torch.randn(rows, 1, generator=gen))
        packed, scale = tq.quantize(w, bits, group)
        wd = tq.dequantize(packed, scale, bits, k, group)
        for t, bias, dt in ((1, True, torch.float32), (5, False, torch.float32), (70, True, torch.float32),
                            (6, True, torch.bfloat16), (40, True, torch.bfloat16), (16, False, torch.float32)):
            x = torch.randn(2, t, k, generator=gen).to(dt)
            b = torch.randn(rows, generator=gen) if bias else None
            ref = torch.nn.functional.linear(x.float(), wd, b)
            for level in _each_isa():
                got = tables.table_linear(x, packed, scale, bits, group, b)
                assert got.dtype == dt and got.shape == (2, t, rows)
                with torch.inference_mode():  # what generate / eval run under (worker threads too)
                    assert torch.equal(tables.table_linear(x, packed, scale, bits, group, b), got)
                out_rounding = 2 ** -8 if dt == torch.bfloat16 else 0.0  # bf16: one rounding of y
                # 10+ tokens in bf16 (32+ without AVX512-BF16): the GEMM path rounds the table and
                # its product to bf16 too
                gemm_bf16 = 2 ** -7 if dt == torch.bfloat16 and 2 * t >= GEMM_TOKENS_BF16 else 0.0
                err = (got.float() - ref).abs()
                assert bool((err <= _bound(x, wd, b, 1e-5 + gemm_bf16) + out_rounding * ref.abs()).all()), \
                    (level, rows, k, group, t, dt, float(err.max()))


def test_table_linear_every_token_count_of_the_decode_tiles():
    """1..9 tokens (every remainder of the 8/4/2/1-token tiles, all below the GEMM path) and 31
    (the most below it in float32) equal the reference within float32 summation order at every
    level, INT8 and INT4, with a partial last group, float32 and bfloat16 rows (bf16: then one bf16
    rounding of y; 31 bf16 tokens may take the GEMM path: within its bf16 roundings)."""
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(37, 576, generator=gen)
    for bits in (8, 4):
        packed, scale = tq.quantize(w, bits, 128)
        wd = tq.dequantize(packed, scale, bits, 576, 128)
        for t in (*range(1, 10), 31):
            for dt in (torch.float32, torch.bfloat16):
                x = torch.randn(t, 576, generator=gen).to(dt)
                ref = x.float() @ wd.T
                out_rounding = 2 ** -8 if dt == torch.bfloat16 else 0.0
                gemm_bf16 = 2 ** -7 if dt == torch.bfloat16 and t >= GEMM_TOKENS_BF16 else 0.0
                for level in _each_isa():
                    got = tables.table_linear(x, packed, scale, bits, 128, None)
                    assert got.dtype == dt
                    err = (got.float() - ref).abs()
                    assert bool((err <= _bound(x, wd, None, 1e-5 + gemm_bf16) + out_rounding * ref.abs()).all()), \
                        (level, bits, t, dt)


@pytest.mark.parametrize("bits", [8, 4])
def test_table_linear_few_bf16_tokens_amx_path(bits):
    """3..16 bfloat16 tokens of an INT8 / INT4 table (on a CPU with AMX-BF16 at level amx: codes and
    x exact in bf16 tiles, float32 sums per group; elsewhere the register / GEMM paths) equal the
    reference within float32 summation order and one bf16 rounding of y: 16-row blocks plus a tail
    of rows, groups of 32 / 64 / 128 (partial last group), widths that end in a partial 32-column
    step (odd ones too: INT4's padding nibble), bias or none, at every level."""
    gen = torch.Generator().manual_seed(11)
    for rows, k, group in ((49, 576, 64), (40, 576, 128), (35, 96, 32), (33, 456, 64), (17, 100, 32), (20, 7, 32),
                           (18, 77, 32)):
        w = torch.randn(rows, k, generator=gen) * torch.exp(torch.randn(rows, 1, generator=gen))
        packed, scale = tq.quantize(w, bits, group)
        wd = tq.dequantize(packed, scale, bits, k, group)
        for t in (3, 4, 7, 8, 9, 12, 16):
            x = (torch.randn(t, k, generator=gen) * torch.exp(torch.randn(t, 1, generator=gen))).bfloat16()
            b = torch.randn(rows, generator=gen) if t % 2 else None
            ref = torch.nn.functional.linear(x.float(), wd, b)
            for level in _each_isa():
                got = tables.table_linear(x, packed, scale, bits, group, b)
                gemm_bf16 = 2 ** -7 if level != "amx" and t >= GEMM_TOKENS_BF16 else 0.0  # the GEMM path's roundings
                err = (got.float() - ref).abs()
                assert bool((err <= _bound(x, wd, b, 1e-5 + gemm_bf16) + 2 ** -8 * ref.abs()).all()), \
                    (level, rows, k, group, t, float(err.max()))


@pytest.mark.parametrize("bits", [8, 4])
def test_table_linear_few_bf16_tokens_one_hot_exact(bits):
    """One-hot bfloat16 rows (3..16 tokens: the AMX-BF16 path at level amx where the CPU has it)
    give the table entry code * scale, plus the bias in float32, rounded once to bfloat16, bit for
    bit (INT8 and INT4, 16-row blocks and a tail, groups of 32); below level amx, 10+ tokens may take
    the GEMM path, which rounds the product and then product + bias."""
    gen = torch.Generator().manual_seed(12)
    w = torch.randn(37, 64, generator=gen) * torch.exp(torch.randn(37, 1, generator=gen))
    packed, scale = tq.quantize(w, bits, 32)
    wd = tq.dequantize(packed, scale, bits, 64, 32)
    bias = torch.randn(37, generator=gen)
    for t in (3, 4, 9, 16):
        x = torch.eye(64)[3:3 + t].bfloat16()
        for b in (None, bias):
            want = (wd[:, 3:3 + t].T + (0 if b is None else b)).bfloat16()
            # the GEMM path (10+ tokens below level amx) rounds the product, then product + bias
            twice = (wd[:, 3:3 + t].T.bfloat16().float() + (0 if b is None else b)).bfloat16()
            for level in _each_isa():
                got = tables.table_linear(x, packed, scale, bits, 32, b).view(torch.int16)
                assert torch.equal(got, want.view(torch.int16)) or (
                    level != "amx" and t >= GEMM_TOKENS_BF16 and torch.equal(got, twice.view(torch.int16))), \
                    (level, t, b is None)


def test_table_linear_bf16_gemm_path_rounds_the_table_once_exactly():
    """32+ bfloat16 tokens (the GEMM path): with one-hot rows x = e_k the output is the table entry
    code * scale rounded once to bfloat16 (plus a bias in float32, rounded again), bit for bit, at
    every level, INT8 and INT4, over two 1024-row chunks, for shapes rounded from the codes
    directly (AVX512-BF16, 16-column steps; K = 456 and 37 end in a partial one) and from float32
    (K = 100, group 20)."""
    gen = torch.Generator().manual_seed(8)
    for k, group in ((96, 32), (100, 20), (456, 64), (37, 16)):
        w = torch.randn(1100, k, generator=gen) * torch.exp(torch.randn(1100, 1, generator=gen))
        x = torch.eye(k).bfloat16()  # k >= 32 one-hot rows
        for bits in (8, 4):
            packed, scale = tq.quantize(w, bits, group)
            want = tq.dequantize(packed, scale, bits, k, group).T.bfloat16()
            bias = torch.randn(1100, generator=gen)
            for level in _each_isa():
                got = tables.table_linear(x, packed, scale, bits, group, None)
                assert torch.equal(got.view(torch.int16), want.view(torch.int16)), (level, k, bits)
                # a bias is added to the bf16 product in float32, then rounded once more
                got = tables.table_linear(x, packed, scale, bits, group, bias)
                assert torch.equal(got.view(torch.int16), (want.float() + bias).bfloat16().view(torch.int16))


def test_table_linear_many_tokens_in_worker_threads():
    """Past 32 tokens and one 1024-row chunk, the chunks run on worker threads under the caller's
    inference mode (generate / eval): the result equals the one outside it and the reference."""
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(2100, 64, generator=gen)
    packed, scale = tq.quantize(w, 8, 64)
    wd = tq.dequantize(packed, scale, 8, 64, 64)
    x = torch.randn(40, 64, generator=gen)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = tables.table_linear(x, packed, scale, 8, 64, None)
        with torch.inference_mode():
            inf = tables.table_linear(x, packed, scale, 8, 64, None)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(inf, got)
    assert bool(((got - x @ wd.T).abs() <= _bound(x, wd, None, 1e-5)).all())


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


def test_table_linear_bf16_gemm_path_equals_a_dense_bf16_head():
    """Many bfloat16 tokens and no bias: the chunked GEMM path equals torch's GEMM against the whole
    table rounded to bfloat16, bit for bit (a dense bf16 head), at K = 64 and 576 over three
    1024-row chunks on 2 threads."""
    gen = torch.Generator().manual_seed(13)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for k in (64, 576):
            w = torch.randn(2100, k, generator=gen)
            packed, scale = tq.quantize(w, 8, 64)
            wb = tq.dequantize(packed, scale, 8, k, 64).bfloat16()
            x = torch.randn(40, k, generator=gen).bfloat16()
            got = tables.table_linear(x, packed, scale, 8, 64, None)
            assert torch.equal(got.view(torch.int16), torch.mm(x, wb.T).view(torch.int16)), k
    finally:
        torch.set_num_threads(threads)


def test_table_linear_one_token_equals_its_row_of_a_two_token_call():
    """One token (a decode step's head) runs rows four at a time: each output equals, bit for bit,
    the same token's output in a two-token call (one row at a time, the same summation order), at
    every level, INT8 and INT4, with row counts that leave 1..3 rows over and with a bias."""
    gen = torch.Generator().manual_seed(14)
    for k, group, rows in ((96, 32, 1030), (576, 64, 1027), (64, 64, 5)):
        w = torch.randn(rows, k, generator=gen)
        bias = torch.randn(rows, generator=gen)
        x = torch.randn(2, k, generator=gen)
        for bits in (8, 4):
            packed, scale = tq.quantize(w, bits, group)
            for level in _each_isa():
                for b in (None, bias):
                    one = tables.table_linear(x[:1], packed, scale, bits, group, b)
                    two = tables.table_linear(x, packed, scale, bits, group, b)
                    assert torch.equal(one[0], two[0]), (level, k, rows, bits, b is None)


def test_table_linear_ignores_the_padding_nibble_of_an_odd_width():
    """An INT4 table of odd width K stores a padding nibble in each row's last byte: whatever it
    holds, every level gives, bit for bit, what it gives for the table as quantized (only columns
    < K are read), for 1, 3 and 8 tokens in float32 and bfloat16 (the tail steps of every path)."""
    gen = torch.Generator().manual_seed(15)
    for k in (61, 457):
        w = torch.randn(37, k, generator=gen)
        packed, scale = tq.quantize(w, 4, 32)
        dirty = packed.clone()
        dirty[:, -1] |= 0xF0  # the high nibble of the last byte: column K, past the row
        for t in (1, 3, 8):
            for dt in (torch.float32, torch.bfloat16):
                x = torch.randn(t, k, generator=gen).to(dt)
                for level in _each_isa():
                    clean = tables.table_linear(x, packed, scale, 4, 32, None)
                    assert torch.equal(tables.table_linear(x, dirty, scale, 4, 32, None), clean), (level, k, t, dt)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("clip", [False, True])
def test_table_quantized_in_row_blocks_equals_the_whole_table(monkeypatch, bits, clip):
    """Quantizing TABLE_ROW_BLOCK rows at a time (so the float32 working copies stay a block's) gives
    the codes and scales of the whole table in one piece, bit for bit, a last partial block and a
    last partial group included."""
    w = torch.randn(53, 37, generator=torch.Generator().manual_seed(3)) * torch.logspace(-3, 1, 53).unsqueeze(1)
    whole = tq._quantize_rows(w, bits, 16, clip)
    monkeypatch.setattr(tq, "TABLE_ROW_BLOCK", 8)
    blocked = tq.quantize(w, bits, 16, clip)
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(blocked, whole))
