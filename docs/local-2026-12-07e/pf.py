"""Focused timing: fused bf16 anda_linear at M = 4 and 8 on the prefill shape and 16-token decode, vs torch bf16."""
import sys, torch
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import bench_gemm as bg
from andactl.kernels import fused
threads = int(sys.argv[2]); bg.setup(threads)
gen = torch.Generator().manual_seed(0)
ops_ = torch.ops.andactl
out = []
for (T, K, N, gs) in ((2048, 576, 1536, 64), (16, 4096, 11008, 128), (1, 4096, 11008, 128)):
    x = torch.randn(T, K, generator=gen).bfloat16()
    codes, wp, sc = bg.int4_weights(N, K, gs, gen)
    wf = ((codes.float() - 8) * sc.repeat_interleave(gs, 1)).bfloat16()
    tb = bg.bench(lambda: torch.nn.functional.linear(x, wf), 5)
    res = [f"T={T} torch_bf16 {tb:.2f}"]
    for m in (4, 8):
        wpp = ops_.int4_prepack(wp, sc, None, gs, K); scb, zb = fused.block_scales(sc, None)
        t = bg.bench(lambda: ops_.anda_linear(x, m, "truncate", wpp, scb, zb, None, gs, N), 5)
        res.append(f"M{m} {t:.2f} ({tb/t:.2f}x)")
    out.append("  ".join(res))
print(" | ".join(out))
