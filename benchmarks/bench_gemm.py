"""Anda packed GEMM vs torch on the same shapes, side by side in one run (2 threads).

    .venv/bin/python benchmarks/bench_gemm.py [--format json] [--repeat N]

Prefill (2048x576)·(576x1536): anda_gemm(anda_pack(x)) at M = 4, 6, 8 vs F.linear in bf16 and
fp32. Decode (T x 4096)·(4096x11008), T = 1, 16, symmetric groups of 128: vs torch's int4
weight-only CPU kernel (aten._weight_int4pack_mm_for_cpu, group 128) and bf16 F.linear; and
T = 1 with asymmetric groups of 64 (what `andactl quantize` writes by default) against torch's
kernel at group 64. Weight scales are float16 values, as artifacts store them (formats/int4.py). Reports the compressor
(anda_pack) alone, the GEMM on the canonical weight layout (prepacks per call), the GEMM on the
prepacked weight (int4_prepack once, what AndaLinear caches) and pack + prepacked GEMM. "fused"
is ``andactl::anda_linear`` (quantize + prepacked GEMM in one C++ call on operands prepacked once:
what AndaLinear runs) on float32 x (float32 out), "fused bf16" the same on bfloat16 x (bfloat16
out, what a bf16 run does). Ratios are torch time / ours (>1 = faster), like for like: bf16
F.linear and torch's int4 kernel (both on bf16 x) against "fused bf16", fp32 F.linear against
"fused". A STREAM-like copy
(torch copy_ of 256 MiB, read + write bytes / time) measured in the same run gives the memory
bandwidth; decode rows report the fused op's weight-stream rate (prepacked weight + scales +
zero points read per call / time) as a share of it, and as a share of torch reading (``sum``) a
buffer of the same size (the rate that cache level, or DRAM, gives a pure read). A last row streams
one token through 96 distinct (2048x5632) linears (606 MB: a ~1B model's decode step, from DRAM)
against torch's int4 kernel over 96 distinct weights. Use --threads 1 on a loaded machine.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

from andactl.kernels import build, fused, ops, prepack  # noqa: F401  (prepack: op schemas)


def bench(fn, repeat: int, min_time: float = 0.3) -> float:
    """Median wall time in ms over `repeat` timed calls after 2 warmups (more repeats if fast)."""
    fn(); fn()
    t = time.perf_counter(); fn(); one = time.perf_counter() - t
    n = max(repeat, int(min_time / max(one, 1e-6)))
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3


def setup(threads: int) -> None:
    """torch on ``threads`` threads and the C++ extension loaded (built on first use), or exit with
    the reason: what every benchmark of the CPU kernels needs first."""
    torch.set_num_threads(threads)
    res = build.load()
    if not res.ok:
        raise SystemExit(f"C++ extension unavailable: {res.reason}")


def int4_weights(n: int, k: int, gs: int, gen: torch.Generator):
    codes = torch.randint(0, 16, (n, k), generator=gen, dtype=torch.uint8)
    scales = (torch.rand(n, k // gs, generator=gen) * 0.01 + 1e-3).half().float()  # float16 values
    return codes, ops.pack_int4(codes), scales


def torch_int4(codes: torch.Tensor, sc: torch.Tensor, z: torch.Tensor | None = None):
    """The same weights for torch's int4 CPU kernel: (packed codes, scales_and_zeros) with
    w = (q - 8) * s + zero, zero = (8 - z) * s (z None: symmetric, zero points 8)."""
    zero = torch.zeros_like(sc) if z is None else -(z.float() - 8) * sc
    sz = torch.stack([sc.t(), zero.t()], -1).bfloat16().contiguous()
    return torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), 1), sz


def ours(x: torch.Tensor, m: int, k: int, n: int, wp: torch.Tensor, sc: torch.Tensor, gs: int,
         repeat: int, z: torch.Tensor | None = None) -> dict:
    """Times (ms) of anda_pack, canonical anda_gemm, prepacked GEMM and pack + prepacked GEMM
    (zero points z: asymmetric weights)."""
    ops_ = torch.ops.andactl
    words, exps = ops_.anda_pack(x, m)
    wpp = ops_.int4_prepack(wp, sc, z, gs, k)
    scb, zb = fused.block_scales(sc, z)
    fused_ms = bench(lambda: ops_.anda_linear(x, m, "truncate", wpp, scb, zb, None, gs, n), repeat)
    xb = x.bfloat16()
    fused_bf16_ms = bench(lambda: ops_.anda_linear(xb, m, "truncate", wpp, scb, zb, None, gs, n), repeat)
    stream_bytes = sum(t.numel() * t.element_size() for t in (wpp, scb, zb))
    return dict(fused_ms=fused_ms, fused_bf16_ms=fused_bf16_ms, weight_stream_gbs=stream_bytes / fused_ms / 1e6,
        stream_bytes=stream_bytes,
        M=m, pack_ms=bench(lambda: ops_.anda_pack(x, m), repeat),
        gemm_ms=bench(lambda: ops_.anda_gemm(words, exps, m, k, wp, sc, z, gs), repeat),
        prepacked_ms=bench(lambda: ops_.anda_gemm_prepacked(words, exps, m, k, wpp, sc, z, gs, n), repeat),
        pack_gemm_ms=bench(lambda: ops_.anda_gemm_prepacked(*ops_.anda_pack(x, m), m, k, wpp, sc, z, gs, n),
                           repeat))


def copy_bandwidth(repeat: int, mib: int = 256) -> float:
    """GB/s of a STREAM-like copy (torch copy_ of ``mib`` MiB float32: read + write bytes / time)."""
    src = torch.ones(mib << 18)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / bench(lambda: dst.copy_(src), repeat) / 1e6


def read_bandwidth(nbytes: int, repeat: int) -> float:
    """GB/s of torch reading a float32 buffer of ``nbytes`` (``sum``): what the same cache level (or
    DRAM) delivers to a pure read of the size a decode call streams."""
    buf = torch.ones(max(nbytes // 4, 1))
    return buf.numel() * 4 / bench(lambda: buf.sum(), repeat) / 1e6


def model_sized_decode(repeat: int, gen: torch.Generator, layers: int = 96) -> dict:
    """One token through ``layers`` distinct (2048 x 5632) linears, asymmetric groups of 64 (606 MB
    of prepacked weights: a decode step of a ~1B model, streamed from DRAM) against torch's int4
    kernel over the same number of distinct weights; times per linear."""
    ops_ = torch.ops.andactl
    K, N, gs = 2048, 5632, 64
    ours_w, torch_w = [], []
    for _ in range(layers):
        codes, wp, sc = int4_weights(N, K, gs, gen)
        z = torch.randint(0, 16, (N, K // gs), generator=gen, dtype=torch.uint8)
        ours_w.append((ops_.int4_prepack(wp, sc, z, gs, K), *fused.block_scales(sc, z)))
        torch_w.append(torch_int4(codes, sc, z))
    xb = torch.randn(1, K, generator=gen).bfloat16()
    stream = sum(t.numel() * t.element_size() for w in ours_w for t in w)
    sweep = lambda: [ops_.anda_linear(xb, 8, "truncate", w, s, z, None, gs, N) for w, s, z in ours_w]  # noqa: E731
    t_ours = bench(sweep, max(2, repeat // 2)) / layers
    t_i4 = bench(lambda: [torch.ops.aten._weight_int4pack_mm_for_cpu(xb, w, gs, sz) for w, sz in torch_w],
                 max(2, repeat // 2)) / layers
    del torch_w
    return dict(shape=f"decode 1x{K}x{N} g64 asym, {layers} distinct (DRAM)", M=8, pack_ms=None, gemm_ms=None,
                prepacked_ms=None, pack_gemm_ms=None, fused_ms=None, fused_bf16_ms=t_ours,
                weight_stream_gbs=stream / layers / t_ours / 1e6, read_gbs=read_bandwidth(stream, 2),
                bf16_linear_ms=None, fp32_linear_ms=None, int4_mm_ms=t_i4)


def run(repeat: int) -> tuple[list[dict], float]:
    gen = torch.Generator().manual_seed(0)
    rows = []
    copy_gbs = copy_bandwidth(repeat)
    # ---- prefill
    T, K, N = 2048, 576, 1536
    x = torch.randn(T, K, generator=gen)
    codes, wp, sc = int4_weights(N, K, 64, gen)
    wf = ((codes.float() - 8) * sc.repeat_interleave(64, 1)).contiguous()
    xb, wb = x.bfloat16(), wf.bfloat16()
    t_bf16 = bench(lambda: F.linear(xb, wb), max(2, repeat // 3))
    t_fp32 = bench(lambda: F.linear(x, wf), repeat)
    for m in (4, 6, 8):
        rows.append(dict(shape=f"prefill {T}x{K}x{N}", **ours(x, m, K, N, wp, sc, 64, repeat),
                         bf16_linear_ms=t_bf16, fp32_linear_ms=t_fp32, int4_mm_ms=None))
    # ---- decode
    K, N, gs = 4096, 11008, 128
    codes, wp, sc = int4_weights(N, K, gs, gen)
    w_i4, sz = torch_int4(codes, sc)
    wb = ((codes.float() - 8) * sc.repeat_interleave(gs, 1)).bfloat16()
    for T in (1, 16):
        x = torch.randn(T, K, generator=gen)
        xb = x.bfloat16()
        t_i4 = bench(lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(xb, w_i4, gs, sz), repeat)
        t_bf16 = bench(lambda: F.linear(xb, wb), max(2, repeat // 3))
        for m in (4, 6, 8):
            rows.append(dict(shape=f"decode {T}x{K}x{N}", **ours(x, m, K, N, wp, sc, gs, repeat),
                             bf16_linear_ms=t_bf16, fp32_linear_ms=None, int4_mm_ms=t_i4))
    # ---- decode, asymmetric groups of 64 (the quantize default): torch's kernel at group 64
    gs = 64
    codes, wp, sc = int4_weights(N, K, gs, gen)
    z = torch.randint(0, 16, (N, K // gs), generator=gen, dtype=torch.uint8)
    w_i4, sz = torch_int4(codes, sc, z)  # (q - z) * s
    x = torch.randn(1, K, generator=gen)
    xb = x.bfloat16()
    t_i4 = bench(lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(xb, w_i4, gs, sz), repeat)
    t_bf16 = bench(lambda: F.linear(xb, wb), max(2, repeat // 3))  # the dense weight of the same shape
    for m in (4, 6, 8):
        rows.append(dict(shape=f"decode 1x{K}x{N} g64 asym", **ours(x, m, K, N, wp, sc, gs, repeat, z),
                         bf16_linear_ms=t_bf16, fp32_linear_ms=None, int4_mm_ms=t_i4))
    rows.append(model_sized_decode(repeat, gen))
    reads: dict[int, float] = {}  # read bandwidth per stream size, measured once per decode shape
    for r in rows:
        r["copy_gbs"] = copy_gbs
        one_token = r["shape"].startswith("decode 1x")
        if one_token and "read_gbs" not in r:
            if r["stream_bytes"] not in reads:
                reads[r["stream_bytes"]] = read_bandwidth(r["stream_bytes"], repeat)
            r["read_gbs"] = reads[r["stream_bytes"]]
        r["read_share"] = r["weight_stream_gbs"] / r["read_gbs"] if one_token else None
        r["bw_share"] = r["weight_stream_gbs"] / copy_gbs if one_token else None
        # like for like: bfloat16 in and out against torch's bf16 and int4 kernels (both take bf16
        # activations), float32 against float32
        r["vs_bf16"] = r["bf16_linear_ms"] / r["fused_bf16_ms"] if r["bf16_linear_ms"] is not None else None
        r["vs_fp32"] = r["fp32_linear_ms"] / r["fused_ms"] if r["fp32_linear_ms"] is not None else None
        r["vs_int4"] = r["int4_mm_ms"] / r["fused_bf16_ms"] if r["int4_mm_ms"] is not None else None
    return rows, copy_gbs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", choices=("table", "json"), default="table")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    setup(args.threads)
    rows, copy_gbs = run(args.repeat)
    info = dict(isa=build.cpu_isa_info(), threads=args.threads, torch=torch.__version__,
                copy_gbs=round(copy_gbs, 2),
                loadavg=" ".join(f"{v:.2f}" for v in os.getloadavg()))
    if args.format == "json":
        print(json.dumps(dict(info=info, rows=rows), indent=1))
        return
    print(f"# {info}")
    f = lambda v, spec=".2f": "-" if v is None else format(v, spec)  # noqa: E731
    hdr = ("shape", "M", "pack ms", "gemm ms (canonical)", "gemm ms (prepacked)", "pack+prepacked", "fused",
           "fused bf16", "bf16 F.linear", "fp32 F.linear", "int4_mm", "x bf16", "x fp32", "x int4", "% copy BW",
           "% read BW")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print(f"| {r['shape']} | {r['M']} | {f(r['pack_ms'])} | {f(r['gemm_ms'])} | {f(r['prepacked_ms'])} | "
              f"{f(r['pack_gemm_ms'])} | {f(r['fused_ms'])} | {f(r['fused_bf16_ms'])} | "
              f"{f(r['bf16_linear_ms'])} | {f(r['fp32_linear_ms'])} | {f(r['int4_mm_ms'])} | "
              f"{f(r['vs_bf16'])} | {f(r['vs_fp32'])} | {f(r['vs_int4'])} | "
              f"{f(None if r['bw_share'] is None else 100 * r['bw_share'], '.0f')} | "
              f"{f(None if r['read_share'] is None else 100 * r['read_share'], '.0f')} |")


if __name__ == "__main__":
    main()
