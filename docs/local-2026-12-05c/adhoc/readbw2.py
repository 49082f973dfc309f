import sys, time, torch
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
for mb in [int(a) for a in sys.argv[2:]]:
    t = torch.ones(mb * 2**20 // 4)
    for _ in range(2): t.sum()
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter(); t.sum(); best = min(best, time.perf_counter() - t0)
    print(f"{sys.argv[1]} thr {mb:4d} MB sum: {best*1e3:8.2f} ms {mb*2**20/best/1e9:6.1f} GB/s", flush=True)
