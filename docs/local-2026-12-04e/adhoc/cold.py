import sys, os, time, torch
sys.path.insert(0, os.getcwd() + "/benchmarks")
from bench_gemm import int4_weights
from andactl.kernels import build, fused
build.load()
torch.set_num_threads(2)
o = torch.ops.andactl
gen = torch.Generator().manual_seed(0)
T = int(sys.argv[1]) if len(sys.argv) > 1 else 1
layers = []
for l in range(30):
    for K, N, m in ((576, 960, 8), (576, 576, 7), (576, 3072, 8), (1536, 576, 8)):
        codes, wp, sc = int4_weights(N, K, 64, gen)
        wpp = o.int4_prepack(wp, sc, None, 64, K); scb, zb = fused.block_scales(sc, None)
        layers.append((K, N, m, wpp, scb, zb))
xs = {K: torch.randn(T, K, generator=gen).bfloat16() for K in (576, 1536)}
def step():
    for K, N, m, wpp, scb, zb in layers:
        o.anda_linear(xs[K], m, "truncate", wpp, scb, zb, None, 64, N)
def hot():
    for K, N, m, wpp, scb, zb in layers[:4]:
        for _ in range(30): o.anda_linear(xs[K], m, "truncate", wpp, scb, zb, None, 64, N)
for name, fn in (("cold (120 distinct)", step), ("hot (4 x 30)", hot)):
    fn(); fn()
    t = time.perf_counter()
    for _ in range(10): fn()
    print(f"T={T} {name}: {(time.perf_counter()-t)/10*1e3:.2f} ms per 120 calls")
print("weight bytes", sum(l[3].numel() for l in layers) / 1e6, "MB")
