import sys, torch, time
import torch.nn.functional as F
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.kv_cache import cache_kwargs, reserved_cache
from andactl.models import decode_attention, decode_step
from transformers.integrations.sdpa_attention import sdpa_attention_forward
torch.set_num_threads(2)
src, B, P = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = load_model(src, "bfloat16", "cpu").model.eval(); set_model_backend(model, "auto", "cpu"); decode_attention.enable(model)
step = decode_step._step(model)
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, P), generator=torch.Generator().manual_seed(0))
dec = model.model
def lean_prefill(ids, cache, silu_op=False):
    h = dec.embed_tokens(ids)
    T = ids.shape[1]
    cos, sin = dec.rotary_emb(h, position_ids=torch.arange(T).unsqueeze(0))
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    for L in step.layers:
        b, d = h.shape[0], L.head_dim
        x = L.norm1(h)
        q, k, v = L.siblings(x, (L.q, L.k, L.v))
        q, k, v = (t.view(b, T, -1, d).transpose(1, 2) for t in (q, k, v))
        q, k = decode_step._rotate(q, cos, sin), decode_step._rotate(k, cos, sin)
        k, v = cache.update(k, v, L.idx)
        a, _ = sdpa_attention_forward(L.layer.self_attn, q, k, v, None, dropout=0.0, scaling=L.scaling)
        a = L.o(a.reshape(b, T, -1).contiguous())
        h = L.residual(h, "attn_shortcut") + a
        x = L.norm2(h)
        g, u = L.siblings(x, (L.gate, L.up))
        m = L.down(L.act(g) * u)
        h = L.residual(h, "mlp_shortcut") + m
    h = step.final_norm(h)
    return model.lm_head(h[:, -1:])
with torch.inference_mode():
    for mode in ("hf", "lean", "hf", "lean", "hf", "lean"):
        ts = []
        for r in range(3):
            c = reserved_cache(model)
            t = time.perf_counter()
            if mode == "hf":
                lg = model(input_ids=ids, use_cache=True, **{key: c}, **extra).logits[:, -1]
            else:
                lg = lean_prefill(ids, c)[:, -1]
            ts.append(time.perf_counter() - t)
        print(mode, f"{min(ts)*1e3:.1f} ms", lg.float()[0, :3].tolist())
