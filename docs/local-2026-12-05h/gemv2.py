"""Decode GEMV 1x4096x11008 g128 sym (bench_gemm's row): ours vs torch int4 vs torch read, 1 and 2 threads."""
import sys, time, statistics
sys.path.insert(0, "benchmarks")
import torch
from bench_gemm import bench, setup, int4_weights, torch_int4, read_bandwidth
from andactl.kernels import fused
setup(2)
ops_ = torch.ops.andactl
gen = torch.Generator().manual_seed(0)
K, N, gs = 4096, 11008, 128
codes, wp, sc = int4_weights(N, K, gs, gen)
wpp = ops_.int4_prepack(wp, sc, None, gs, K); scb, zb = fused.block_scales(sc, None)
tw, tsz = torch_int4(codes, sc)
xb = torch.randn(1, K, generator=gen).bfloat16()
nbytes = sum(t.numel() * t.element_size() for t in (wpp, scb, zb))
buf = torch.ones(nbytes // 4)
for th in (1, 2, 1, 2):
    torch.set_num_threads(th)
    r = []
    for _ in range(5):
        o = bench(lambda: ops_.anda_linear(xb, 4, "truncate", wpp, scb, zb, None, gs, N), 20)
        i4 = bench(lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(xb, tw, gs, tsz), 20)
        rd = bench(lambda: buf.sum(), 20)
        r.append((o, i4, rd))
    o = statistics.median(x[0] for x in r); i4 = statistics.median(x[1] for x in r); rd = statistics.median(x[2] for x in r)
    print(f"threads {th}: ours {o*1e3:.0f} us  int4 {i4*1e3:.0f} us  ({i4/o:.2f}x)  read-same-bytes {rd*1e3:.0f} us "
          f"(ours at {rd/o*100:.0f}% of read rate; {nbytes/o/1e6:.1f} GB/s)", flush=True)
