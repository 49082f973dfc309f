import time, torch
def g(dt, m=256, k=1024, n=1024, warm=5, inner=20, outer=3):
    a, b = torch.ones(m, k, dtype=dt), torch.ones(k, n, dtype=dt)
    for _ in range(warm): torch.mm(a, b)
    best = 9
    for _ in range(outer):
        t0 = time.perf_counter()
        for _ in range(inner): torch.mm(a, b)
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2*m*k*n/best/1e9
t0=time.perf_counter()
r = [g(torch.bfloat16), g(torch.bfloat16, 1024,1024,1024), g(torch.float32), g(torch.float32, inner=5)]
print(" ".join(f"{x:8.0f}" for x in r), f"{time.perf_counter()-t0:.3f}s")
