"""Head table_linear time at K a multiple of 16 vs K = 8 mod 16 (AVX-512 vs AVX2 path), T = 1 / 8, bf16."""
import time, torch
from andactl.formats import table_quant as tq
from andactl.kernels import tables
def tm(fn, n=30):
    for _ in range(3): fn()
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n): fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e3
torch.manual_seed(0)
for threads in (1, 2):
    torch.set_num_threads(threads)
    for K in (448, 456, 464, 3264, 3272):
        V = 49152 if K < 1000 else 32000
        w = torch.randn(V, K)
        for bits in (8, 4):
            packed, scale = tq.quantize(w, bits)
            for T in (1, 8):
                x = torch.randn(T, K).bfloat16()
                t = tm(lambda: tables.table_linear(x, packed, scale, bits, tq.DEFAULT_TABLE_GROUP))
                print(f"threads {threads} K {K} bits {bits} T {T}: {t:7.3f} ms  {packed.numel()/t/1e6:6.1f} GB/s", flush=True)
