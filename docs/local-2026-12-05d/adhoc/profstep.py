"""Profile decode steps of a packed model (bf16, threads argv[3] (default 1), lean step): op totals per step;
argv[4], if given, sets decode_step.SHORTCUT_ROWS (the shortcut op's row threshold)."""
import sys, time, torch, andactl
from andactl.models import decode_step
if len(sys.argv) > 4: decode_step.SHORTCUT_ROWS = int(sys.argv[4])
from andactl.models.kv_cache import cache_kwargs, reserved_cache_arg
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
model, _ = andactl.load(sys.argv[1], dtype="bfloat16")
print(decode_step.switch_on(model))
key, extra = cache_kwargs(model)
ids = torch.randint(100, 20000, (int(sys.argv[2]) if len(sys.argv) > 2 else 1, 128))
with torch.inference_mode():
    out = model(input_ids=ids, use_cache=True, **reserved_cache_arg(model), **extra)
    cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(4):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache = out[key]
    t = time.perf_counter()
    for _ in range(10):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache = out[key]
    print(f"{(time.perf_counter()-t)/10*1e3:.1f} ms per step")
    with torch.profiler.profile() as p:
        for _ in range(10):
            out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache = out[key]
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))
