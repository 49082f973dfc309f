"""How much of the fused prefill op is the activation quantization: anda_linear on (2048 x 576) bf16
with N = 1536 against N = 16 (one block: the quantization plus a sliver of GEMM)."""
import sys, time, torch
sys.path.insert(0, "/work/main/benchmarks")
import andactl.kernels  # noqa: F401  (registers ops)
from andactl.kernels import fused
import bench_gemm as bg
for th in (1, 2):
    bg.setup(th)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 576, generator=gen).to(torch.bfloat16)
    for m in (4, 8):
        row = []
        for n in (16, 1536):
            codes, wp, sc = bg.int4_weights(n, 576, 64, gen)
            z = torch.randint(0, 16, sc.shape, generator=gen, dtype=torch.uint8)
            wpp = torch.ops.andactl.int4_prepack(wp, sc, z, 64, 576)
            scb, zb = fused.block_scales(sc, z)
            for rnd in ("nearest", "truncate"):
                f = lambda: torch.ops.andactl.anda_linear(x, m, rnd, wpp, scb, zb, None, 64, n)
                row.append(bg.bench(f, 7))
        print(f"threads {th} M={m}: N=16 nearest/truncate {row[0]:.3f}/{row[1]:.3f} ms, N=1536 {row[2]:.3f}/{row[3]:.3f} ms")
