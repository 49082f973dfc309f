import sys, os, torch, torch.nn.functional as F
sys.path.insert(0, os.getcwd() + "/benchmarks")
from bench_gemm import bench, int4_weights
from andactl.kernels import build, fused, ops, prepack
build.load()
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
o = torch.ops.andactl
gen = torch.Generator().manual_seed(0)
gs = 64
tot_a = tot_b = 0
for T in (int(a) for a in sys.argv[2].split(",")):
  for K, N, m in [(k_, n_, int(os.environ.get("M", m_))) for k_, n_, m_ in ((576, 960, 8), (576, 576, 7), (576, 3072, 8), (1536, 576, 8))]:
    codes, wp, sc = int4_weights(N, K, gs, gen)
    wpp = o.int4_prepack(wp, sc, None, gs, K); scb, zb = fused.block_scales(sc, None)
    xb = torch.randn(T, K, generator=gen).bfloat16()
    wb = ((codes.float() - 8) * sc.repeat_interleave(64, 1)).bfloat16()
    tb = bench(lambda: F.linear(xb, wb), 9)
    t = bench(lambda: o.anda_linear(xb, m, "truncate", wpp, scb, zb, None, gs, N), 9)
    tot_a += t; tot_b += tb
    print(f"T={T} {K}x{N} M={m}: ours {t*1e3:.0f} us | bf16 {tb*1e3:.0f} us | x{tb/t:.2f}", flush=True)
print(f"sum ours {tot_a*1e3:.0f} us bf16 {tot_b*1e3:.0f} us")
