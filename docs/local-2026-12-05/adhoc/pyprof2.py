import sys, torch, cProfile, pstats, time
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.kv_cache import cache_kwargs, reserved_cache
from andactl.models import decode_attention
torch.set_num_threads(2)
src, B, P = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = load_model(src, "bfloat16", "cpu").model.eval(); set_model_backend(model, "auto", "cpu"); decode_attention.enable(model); from andactl.models import decode_step; decode_step.enable(model)
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, P))
with torch.inference_mode():
    out = model(input_ids=ids, use_cache=True, **{key: reserved_cache(model)}, **extra)
    cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(3):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    pr = cProfile.Profile(); pr.enable()
    for _ in range(10):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    pr.disable()
st = pstats.Stats(pr); st.sort_stats(sys.argv[4] if len(sys.argv)>4 else "tottime").print_stats(int(sys.argv[5]) if len(sys.argv)>5 else 25)
