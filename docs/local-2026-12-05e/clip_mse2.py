import torch
from andactl.models.loading import load_model
from andactl.formats.int4 import group_params, quantize_codes, fp16_scale_up

def err_of(w, s, z):
    q = quantize_codes(w, s[:, None], z[:, None])
    return ((q - z[:, None]) * s[:, None] - w).pow(2).sum(1), q

def sz(lo, hi):
    s = fp16_scale_up(torch.where(hi > lo, (hi - lo) / 15, torch.ones_like(hi)))
    return s, torch.round(-lo / s).clamp(0, 15)

def search2d(w, ps):
    lo0 = w.amin(1).clamp(max=0); hi0 = w.amax(1).clamp(min=0)
    bs, bz = group_params(w, False); be, _ = err_of(w, bs, bz)
    for a in ps:
        for b in ps:
            s, z = sz(lo0 * a, hi0 * b)
            e, _ = err_of(w, s, z)
            m = e < be
            be = torch.where(m, e, be); bs = torch.where(m, s, bs); bz = torch.where(m, z, bz)
    return be, bs, bz

def refit(w, s, z, iters=3):
    be, q = err_of(w, s, z)
    for _ in range(iters):
        d = q - z[:, None]
        s2 = (w * d).sum(1) / d.pow(2).sum(1).clamp(min=1e-12)
        s2 = torch.where(s2 > 0, s2, s).to(torch.float16).float()
        s2 = torch.where(torch.isfinite(s2) & (s2 > 0), s2, s)
        # best integer zero for this scale: z = round(mean(q_real - w/s)) over group
        z2 = torch.round((torch.round(w / s2[:, None]) * 0 + (q - w / s2[:, None])).mean(1) * 0 + z).clamp(0, 15)
        e2, q2 = err_of(w, s2, z2)
        m = e2 < be
        be = torch.where(m, e2, be); s = torch.where(m, s2, s); z = torch.where(m, z2, z)
        _, q = err_of(w, s, z)
    return be

lm = load_model("smollm2-135m", "float32")
model = lm.model if hasattr(lm, "model") else lm
t = {"minmax": 0.0, "1d": 0.0, "2d": 0.0, "2d+ls": 0.0}
ps = [1 - 0.02 * i for i in range(0, 11)]
for name, mod in model.named_modules():
    if isinstance(mod, torch.nn.Linear) and "lm_head" not in name:
        g = mod.weight.detach().float().reshape(-1, 64)
        s, z = group_params(g, False); e0, _ = err_of(g, s, z); t["minmax"] += e0.sum().item()
        lo0 = g.amin(1).clamp(max=0); hi0 = g.amax(1).clamp(min=0)
        be = e0
        for p in [1 - 0.01 * i for i in range(1, 21)]:
            s1, z1 = sz(lo0 * p, hi0 * p); e1, _ = err_of(g, s1, z1); be = torch.minimum(be, e1)
        t["1d"] += be.sum().item()
        e2, s2, z2 = search2d(g, ps); t["2d"] += e2.sum().item()
        t["2d+ls"] += refit(g, s2, z2).sum().item()
print({k: round(v / t["minmax"], 4) for k, v in t.items()})
