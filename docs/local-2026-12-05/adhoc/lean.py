import sys, torch, time
import torch.nn.functional as F
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.kv_cache import cache_kwargs, reserved_cache
from andactl.models import decode_attention
torch.set_num_threads(2)
src, B, P = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = load_model(src, "bfloat16", "cpu").model.eval(); set_model_backend(model, "auto", "cpu"); decode_attention.enable(model)
key, extra = cache_kwargs(model)
ids = torch.randint(0, 49000, (B, P))
base = model.model
layers = list(base.layers)
def norm(x, w, eps):
    dt = x.dtype; h = x.float(); h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps); return w * h.to(dt)
def rot(x, cos, sin):
    d = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., d:], x[..., :d]), -1) * sin
op = torch.ops.andactl.decode_attention
def lean(nxt, cache):
    pos = cache.get_seq_length()
    h = base.embed_tokens(nxt)
    pid = torch.full((nxt.shape[0], 1), pos, dtype=torch.long)
    cos, sin = base.rotary_emb(h, pid)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)   # [B,1,1,D]
    Bn = nxt.shape[0]
    for i, L in enumerate(layers):
        at, mlp = L.self_attn, L.mlp
        x = norm(h, L.input_layernorm.weight, L.input_layernorm.variance_epsilon)
        D = at.head_dim
        q = at.q_proj(x).view(Bn, 1, -1, D).transpose(1, 2)
        k = at.k_proj(x).view(Bn, 1, -1, D).transpose(1, 2)
        v = at.v_proj(x).view(Bn, 1, -1, D).transpose(1, 2)
        q, k = rot(q, cos, sin), rot(k, cos, sin)
        k, v = cache.update(k, v, i)
        a = op(q, k, v, at.scaling)  # [B,H,1,D]
        h = h + at.o_proj(a.view(Bn, 1, -1))
        x = norm(h, L.post_attention_layernorm.weight, L.post_attention_layernorm.variance_epsilon)
        h = h + mlp.down_proj(F.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
    h = norm(h, base.norm.weight, base.norm.variance_epsilon)
    return model.lm_head(h)
with torch.inference_mode():
    for mode in ("hf", "lean", "hf", "lean"):
        out = model(input_ids=ids, use_cache=True, **{key: reserved_cache(model)}, **extra)
        cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
        toks = []; lg = []
        t = time.perf_counter()
        for s in range(24):
            if s == 4: t = time.perf_counter()
            if mode == "hf":
                out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra); cache = out[key]; logits = out.logits[:, -1]
            else:
                logits = lean(nxt, cache)[:, -1]
            nxt = logits.float().argmax(-1, keepdim=True); toks.append(nxt); lg.append(logits.float())
        dt = (time.perf_counter() - t) / 20
        print(mode, f"{dt*1e3:.1f} ms/step", torch.cat(toks, 1)[0, :10].tolist(), lg[-1][0, :3].tolist())
