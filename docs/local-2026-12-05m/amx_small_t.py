"""INT8 / INT4 head (49152 x 576 and 32000 x 3264, group 64, bf16 x) at 1..4 tokens, 1 and 2 threads: ms per call."""
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
for V, K in ((49152, 576), (32000, 3264)):
    w = torch.randn(V, K)
    for bits in (8, 4):
        packed, scale = tq.quantize(w, bits)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row = []
            for T in (1, 2, 3, 4):
                x = torch.randn(T, K).bfloat16()
                row.append(tm(lambda: tables.table_linear(x, packed, scale, bits, 64)))
            print(f"K {K} bits {bits} threads {threads}: " + " ".join(f"T{t}={v:.3f}" for t, v in zip((1, 2, 3, 4), row)), flush=True)
