import sys, torch
sys.path.insert(0, "/work/main/benchmarks")
from bench_gemm import setup, bench, int4_weights
from andactl.kernels import fused
setup(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
ops_ = torch.ops.andactl
gen = torch.Generator().manual_seed(0)
K, gs = 4096, 128
for N in (256, 512, 1024, 2048, 4096, 11008, 22016):
    codes, wp, sc = int4_weights(N, K, gs, gen)
    wpp = ops_.int4_prepack(wp, sc, None, gs, K)
    scb, zb = fused.block_scales(sc, None)
    xb = torch.randn(1, K, generator=gen).bfloat16()
    ms = bench(lambda: ops_.anda_linear(xb, 4, "truncate", wpp, scb, zb, None, gs, N), 20, 0.5)
    by = sum(t.numel() * t.element_size() for t in (wpp, scb, zb))
    print(f"N={N:6d} bytes={by/1e6:7.2f} MB  {ms*1e3:8.1f} us  {by/ms/1e6:6.1f} GB/s", flush=True)
