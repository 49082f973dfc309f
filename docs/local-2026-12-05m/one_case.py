"""K=3264 INT8 T=1 head (32000 rows, bf16 x) at 1 thread: best of 5 x 30 calls, printed 3 times."""
import time, torch
from andactl.formats import table_quant as tq
from andactl.kernels import tables
torch.manual_seed(0); torch.set_num_threads(1)
w = torch.randn(32000, 3264); packed, scale = tq.quantize(w, 8); x = torch.randn(1, 3264).bfloat16()
f = lambda: tables.table_linear(x, packed, scale, 8, tq.DEFAULT_TABLE_GROUP)
for _ in range(3): f()
for rep in range(3):
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(30): f()
        best = min(best, (time.perf_counter() - t) / 30)
    print(f"{best*1e3:.3f}", end=" ")
print()
