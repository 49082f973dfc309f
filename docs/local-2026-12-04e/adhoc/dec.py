import sys, torch
sys.path.insert(0, "/work/main/benchmarks")
from bench_gemm import bench, int4_weights
from andactl.kernels import build, fused, ops, prepack
build.load()
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
o = torch.ops.andactl
gen = torch.Generator().manual_seed(0)
K, gs = 4096, 128
for N in (256, 512, 2048, 11008):
    codes, wp, sc = int4_weights(N, K, gs, gen)
    wpp = o.int4_prepack(wp, sc, None, gs, K); scb, zb = fused.block_scales(sc, None)
    xb = torch.randn(1, K, generator=gen).bfloat16()
    for m in (4, 8):
        t = bench(lambda: o.anda_linear(xb, m, "truncate", wpp, scb, zb, None, gs, N), 9)
        blocks = N // 16 * K // 64
        print(f"N={N} M={m} {t*1e3:.1f} us  {t*1e6/blocks:.2f} ns/block  {wpp.numel()/t/1e6:.1f} GB/s")
