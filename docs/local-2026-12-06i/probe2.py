import time, torch
def g(dt, m=256, k=1024, n=1024, reps=3):
    a, b = torch.ones(m, k, dtype=dt), torch.ones(k, n, dtype=dt)
    torch.mm(a, b); best = 9
    for _ in range(reps):
        t0 = time.perf_counter(); torch.mm(a, b); best = min(best, time.perf_counter() - t0)
    return 2*m*k*n/best/1e9
t0=time.perf_counter()
r = [g(torch.bfloat16), g(torch.bfloat16, reps=10), g(torch.bfloat16, reps=30), g(torch.float32), g(torch.float32, reps=10)]
print(" ".join(f"{x:8.0f}" for x in r), f"{time.perf_counter()-t0:.3f}s")
