"""Fixed cost of one anda_linear GEMV call vs N (1 x 4096, symmetric g128, bf16), 1 and 2 threads (scratch)."""
import sys, time, torch
sys.path.insert(0, "/work/main/benchmarks")
from bench_gemm import bench, int4_weights, setup, torch_int4
from andactl.kernels import fused
gen = torch.Generator().manual_seed(0)
ops_ = torch.ops.andactl
for threads in (1, 2):
    setup(threads)
    for n in (16, 64, 256, 1024, 11008):
        codes, wp, sc = int4_weights(n, 4096, 128, gen)
        x = torch.randn(1, 4096, generator=gen).bfloat16()
        wpp = ops_.int4_prepack(wp, sc, None, 128, 4096)
        scb, zb = fused.block_scales(sc, None)
        t = bench(lambda: ops_.anda_linear(x, 4, "truncate", wpp, scb, zb, None, 128, n), 9)
        w4, sz = torch_int4(codes, sc)
        ti = bench(lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(x, w4, 128, sz), 9)
        print(f"threads {threads} N {n:6d}: ours {t*1e3:8.1f} us  torch int4 {ti*1e3:8.1f} us")
