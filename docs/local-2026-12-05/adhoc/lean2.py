import sys, torch, time
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.kv_cache import cache_kwargs, reserved_cache
from andactl.models import decode_attention, decode_step
torch.set_num_threads(2)
src, B, P, dt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = load_model(src, dt, "cpu").model.eval(); set_model_backend(model, "auto", "cpu"); print(decode_attention.enable(model), decode_step.why_not(model))
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, P), generator=torch.Generator().manual_seed(0))
res = {}
with torch.inference_mode():
    for mode in ("hf", "lean", "hf", "lean"):
        decode_step.enable(model) if mode == "lean" else decode_step.disable(model)
        out = model(input_ids=ids, use_cache=True, **{key: reserved_cache(model)}, **extra)
        cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
        lg = []
        for s in range(24):
            if s == 4: t = time.perf_counter()
            out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache = out[key]; logits = out.logits[:, -1]
            nxt = logits.float().argmax(-1, keepdim=True); lg.append(logits.float())
        dt_ = (time.perf_counter() - t) / 20
        res[mode] = torch.stack(lg)
        print(mode, f"{dt_*1e3:.1f} ms/step", decode_step.enabled_on(model))
print("max diff", (res["hf"] - res["lean"]).abs().max().item(), torch.equal(res["hf"], res["lean"]))
