import sys, torch, time
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.kv_cache import cache_kwargs, reserved_cache
from andactl.models import decode_attention, decode_step
torch.set_num_threads(int(sys.argv[4]))
src, B, P = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = load_model(src, "bfloat16", "cpu").model.eval(); set_model_backend(model, "auto", "cpu"); decode_attention.enable(model); decode_step.enable(model)
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, P), generator=torch.Generator().manual_seed(0))
best = []
with torch.inference_mode():
    for r in range(3):
        out = model(input_ids=ids, use_cache=True, **{key: reserved_cache(model)}, **extra)
        cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
        for s in range(44):
            if s == 4: t = time.perf_counter()
            out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache = out[key]
            nxt = out.logits[:, -1].float().argmax(-1, keepdim=True)
        best.append((time.perf_counter() - t) / 40 * 1e3)
print(sys.argv[5], " ".join(f"{b:.2f}" for b in best), "ms/step")
