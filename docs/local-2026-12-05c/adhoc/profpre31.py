"""Where a 512-token prefill spends its time: dense vs packed (bf16, 2 threads, lean loop)."""
import sys, time, torch
import andactl
from andactl.models import decode_step
torch.set_num_threads(2)
def run(path, bs=1, T=512):
    from andactl.models.loading import load_model
    lm = load_model(path, "bfloat16")
    model = lm.model.eval()
    from andactl.kernels.backend import set_model_backend
    try:
        set_model_backend(model, "auto")
    except Exception as e:
        print("backend:", e)
    decode_step.switch_on(model) if hasattr(decode_step, "switch_on") else None
    ids = torch.randint(100, 20000, (bs, T))
    with torch.no_grad():
        for _ in range(2):
            model(ids)
        t = time.perf_counter()
        for _ in range(3):
            model(ids)
        wall = (time.perf_counter() - t) / 3
        with torch.profiler.profile() as p:
            model(ids)
    print(f"{path} b{bs}: {wall*1e3:.1f} ms per prefill ({bs*T/wall:.0f} tok/s)")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))
for a in sys.argv[1:]:
    run(a)
