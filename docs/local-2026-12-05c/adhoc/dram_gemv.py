"""Stream many distinct packed linears (as a decode step of a big model does): GB/s at T threads."""
import sys, time, torch
sys.path.insert(0, "/work/main/benchmarks")
from bench_gemm import setup, int4_weights
from andactl.kernels import fused
th = int(sys.argv[1]); setup(th)
K, N, gs, L = 2048, int(sys.argv[2]) if len(sys.argv) > 2 else 5632, 64, int(sys.argv[3]) if len(sys.argv) > 3 else 96
ops_ = torch.ops.andactl
gen = torch.Generator().manual_seed(0)
mods = []
for i in range(L):
    codes, wp, sc = int4_weights(N, K, gs, gen)
    z = torch.randint(0, 16, sc.shape, dtype=torch.uint8, generator=gen)
    wpp = ops_.int4_prepack(wp, sc, z, gs, K)
    scb, zb = fused.block_scales(sc.half().float(), z)
    mods.append((wpp, scb, zb))
by = sum(t.numel() * t.element_size() for m in mods for t in m)
xb = torch.randn(1, K, generator=gen).bfloat16()
def sweep():
    for wpp, scb, zb in mods: ops_.anda_linear(xb, 8, "truncate", wpp, scb, zb, None, gs, N)
sweep()
best = 1e9
for _ in range(5):
    t0 = time.perf_counter(); sweep(); best = min(best, time.perf_counter() - t0)
print(f"{th} thr N={N} L={L} {by/1e6:.0f} MB: {best*1e3:.2f} ms, {best/L*1e6:.1f} us/call, {by/best/1e9:.1f} GB/s")
