"""Fixed cost of the one-token decode GEMV (anda_linear, bf16, K=4096, sym g128) at 1 and 2 threads vs N."""
import sys; sys.path.insert(0, 'benchmarks')
import torch
from bench_gemm import bench, setup, int4_weights, torch_int4
from andactl.kernels import fused
K, gs, m = 4096, 128, 8
for threads in (1, 2):
    setup(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, K, generator=gen).bfloat16()
    for N in (64, 256, 1024, 4096, 11008):
        codes, wp, sc = int4_weights(N, K, gs, gen)
        wpp = torch.ops.andactl.int4_prepack(wp, sc, None, gs, K)
        scb, zb = fused.block_scales(sc, None)
        t = bench(lambda: torch.ops.andactl.anda_linear(x, m, "truncate", wpp, scb, zb, None, gs, N), 20)
        w_i4, sz = torch_int4(codes, sc)
        ti = bench(lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(x, w_i4, gs, sz), 20)
        nb = sum(u.numel() * u.element_size() for u in (wpp, scb) if u is not None)
        print(f"threads {threads} N {N:6d}: ours {t*1e3:8.1f} us ({nb/t/1e6:5.1f} GB/s)  int4 {ti*1e3:8.1f} us  ratio {ti/t:.2f}")
