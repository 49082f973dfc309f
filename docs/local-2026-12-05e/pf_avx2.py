"""Prefill 2048x576->1536: fused anda_linear (fp32 x) at M = 4, 6, 7 vs torch fp32 F.linear. argv: threads rounds"""
import sys, time, torch, torch.nn.functional as F
sys.path.insert(0, "benchmarks")
from bench_gemm import bench, setup, int4_weights
from andactl.kernels import fused
th, rounds = int(sys.argv[1]), int(sys.argv[2])
setup(th)
gen = torch.Generator().manual_seed(0)
T, K, N = 2048, 576, 1536
x = torch.randn(T, K, generator=gen)
codes, wp, sc = int4_weights(N, K, 64, gen)
z = torch.randint(0, 16, (N, K // 64), generator=gen, dtype=torch.uint8)
wf = ((codes.float() - 8) * sc.repeat_interleave(64, 1)).contiguous()
o = torch.ops.andactl
wpp = o.int4_prepack(wp, sc, z, 64, K); scb, zb = fused.block_scales(sc, z)
print(torch.ops.andactl.__dict__.get("x", ""), end="")
for r in range(rounds):
    res = {"fp32": bench(lambda: F.linear(x, wf), 5)}
    for m in (4, 6, 7, 8):
        res[f"M{m}"] = bench(lambda: o.anda_linear(x, m, "truncate", wpp, scb, zb, None, 64, N), 5)
    print(" ".join(f"{k} {v:.2f}" for k, v in res.items()), "| x", " ".join(f"{res['fp32']/res[f'M{m}']:.2f}" for m in (4, 6, 7)), flush=True)
