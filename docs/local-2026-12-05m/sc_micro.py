"""Shortcut r @ S + u in bf16, S 576 x 576 (OPT-125m sliced 25%) and 432 x 432 (SmolLM2): op vs torch, 1 thread, us per call."""
import time, torch
from andactl.kernels import shortcut
torch.set_num_threads(1)
def tm(fn, n=2000):
    for _ in range(100): fn()
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n): fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6
shortcut.shortcut_add(torch.zeros(1, 4).bfloat16(), torch.zeros(4, 4).bfloat16(), torch.zeros(1, 4).bfloat16())
for d in (432, 576):
    S = (torch.randn(d, d) / d ** 0.5).bfloat16()
    for rows in (1, 2, 4, 8):
        r = torch.randn(rows, 1, d).bfloat16(); u = torch.randn(rows, 1, d).bfloat16()
        a = tm(lambda: torch.ops.andactl.shortcut_add(r, S, u)); b = tm(lambda: torch.matmul(r, S) + u)
        print(f"d {d} rows {rows}: op {a:6.1f} us  torch {b:6.1f} us")
