import sys, time, torch
from andactl.kernels import tables, build
from andactl.formats import table_quant as tq
build.load(); torch.set_num_threads(2)
gen = torch.Generator().manual_seed(0)
w = torch.randn(49152, 576, generator=gen)
packed, scale = tq.quantize(w, 8, 64)
for T in (128, 512, 1024):
    x = torch.randn(T, 576, generator=gen).bfloat16()
    f = lambda: tables.table_linear(x, packed, scale, 8, 64, None)
    f(); f()
    ts = []
    for _ in range(15):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    print(sys.argv[1], T, f"{sorted(ts)[7]*1e3:.2f} ms")
