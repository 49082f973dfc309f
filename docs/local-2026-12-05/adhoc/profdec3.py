import sys, torch, time
sys.path.insert(0, "/work/tmp")
from transformers.cache_utils import DynamicCache
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.kv_cache import cache_kwargs
torch.set_num_threads(2)
src, B, P = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = load_model(src, "bfloat16", "cpu").model.eval(); set_model_backend(model, "auto", "cpu")
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, P))
with torch.inference_mode():
    from andactl.models.kv_cache import reserved_cache
    from andactl.models import decode_attention
    if len(sys.argv) > 4: decode_attention.enable(model); from andactl.models import decode_step; decode_step.enable(model)
    c = reserved_cache(model)
    out = model(input_ids=ids, use_cache=True, **{key: c}, **extra)
    cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(3):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        t = time.perf_counter()
        for _ in range(20):
            out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
        dt = (time.perf_counter() - t) / 20
print(f"{src} batch {B}: {dt*1e3:.1f} ms/step (profiled, 20 steps)")
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=22))
