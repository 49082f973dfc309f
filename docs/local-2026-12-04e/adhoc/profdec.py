import sys, torch, time
import andactl
from andactl.models.loading import load_model
from andactl.models.kv_cache import cache_kwargs
torch.set_num_threads(2)
src, B = sys.argv[1], int(sys.argv[2])
model = load_model("smollm2-135m", dtype=torch.bfloat16).model if src == "dense" else andactl.load(src, dtype=torch.bfloat16)[0]
model.eval()
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, 128))
with torch.inference_mode():
    out = model(input_ids=ids, use_cache=True, **extra)
    cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(3):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        t = time.perf_counter()
        for _ in range(8):
            out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
        dt = (time.perf_counter() - t) / 8
print(f"{src} batch {B}: {dt*1e3:.1f} ms/step (profiled)")
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=16))
