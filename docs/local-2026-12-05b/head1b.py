import sys, time, torch
from andactl.kernels import tables, build
from andactl.formats import table_quant as tq
build.load(); torch.set_num_threads(2)
gen = torch.Generator().manual_seed(0)
for K in (576, 2048):
    w = torch.randn(49152, K, generator=gen)
    packed, scale = tq.quantize(w, 8, 64)
    x = torch.randn(1, K, generator=gen).bfloat16()
    f = lambda: tables.table_linear(x, packed, scale, 8, 64, None)
    f(); f()
    ts = []
    for _ in range(30):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    ms = sorted(ts)[15] * 1e3
    print(sys.argv[1], K, f"{ms:.2f} ms, {packed.numel() / ms / 1e6:.1f} GB/s")
