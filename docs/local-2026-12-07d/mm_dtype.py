"""Stop 56 probe: torch CPU GEMM rates at recovery's shapes, float32 vs bfloat16 (inputs already in
each dtype, and bf16 under autocast from float32 weights), forward and the two backward products,
2 threads. Prints ms per call (median of 7)."""
import statistics
import time

import torch

torch.set_num_threads(2)
SHAPES = [(1024, 576, 1536), (1024, 1536, 576), (1024, 576, 576), (1024, 432, 1536), (1024, 1152, 432)]


def ms(fn):
    for _ in range(3):
        fn()
    t = []
    for _ in range(7):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return 1e3 * statistics.median(t)


for m, k, n in SHAPES:
    row = [f"{m}x{k}->{n}"]
    for dt in (torch.float32, torch.bfloat16):
        x = torch.randn(m, k).to(dt); w = torch.randn(n, k).to(dt); g = torch.randn(m, n).to(dt)
        row.append(f"{str(dt)[6:]} fwd {ms(lambda: x @ w.T):.3f} dx {ms(lambda: g @ w):.3f} dw {ms(lambda: g.T @ x):.3f}")
    x = torch.randn(m, k); w = torch.randn(n, k)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        row.append(f"autocast fwd {ms(lambda: torch.nn.functional.linear(x, w)):.3f}")
    print(" | ".join(row), flush=True)
print("flags:", torch.backends.cpu.get_cpu_capability(), torch.__version__)
