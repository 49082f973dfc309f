"""Focused AVX2 prefill timing (run with the AVX2 caps): anda_linear 2048x576->1536, float32 in,
M = 7 and 8, 1 and 2 threads; median ms."""
import sys, torch
sys.path.insert(0, "benchmarks")
import bench_gemm as bg
from andactl.kernels import fused
for th in (1, 2):
    bg.setup(th)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 576, generator=gen)
    codes, wp, sc = bg.int4_weights(1536, 576, 64, gen)
    z = torch.randint(0, 16, sc.shape, generator=gen, dtype=torch.uint8)
    wpp = torch.ops.andactl.int4_prepack(wp, sc, z, 64, 576)
    scb, zb = fused.block_scales(sc, z)
    out = []
    for m in (7, 8):
        out.append(bg.bench(lambda: torch.ops.andactl.anda_linear(x, m, "nearest", wpp, scb, zb, None, 64, 1536), 9))
    print(f"threads {th}: M=7 {out[0]:.2f} ms, M=8 {out[1]:.2f} ms", flush=True)
