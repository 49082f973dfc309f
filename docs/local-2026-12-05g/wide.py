"""Scratch: `andactl recover --full` that also trains what --full freezes (WIDE=shortcuts,norms,head,embed),
by monkeypatching attach and the chunked head loss. Usage: WIDE=... python wide.py recover ARGS..."""
import os, sys
import torch
import andactl.passes.recover_lora as rl
import andactl.passes.recover_loss as rloss

WIDE = set(filter(None, os.environ.get("WIDE", "").split(",")))
_attach = rl.attach

def attach(model, adapter, full, *a, **k):
    t = _attach(model, adapter, full, *a, **k)
    extra = []
    for name, mod in model.named_modules():
        if "shortcuts" in WIDE and name.endswith(("attn_shortcut", "mlp_shortcut")):
            pass
        if "shortcuts" in WIDE and hasattr(mod, "shortcuts"):
            for s in mod.shortcuts:
                b = getattr(mod, s)
                if b is not None:
                    b.requires_grad_(True); extra.append(b)
        if "norms" in WIDE and "norm" in type(mod).__name__.lower() and getattr(mod, "weight", None) is not None:
            mod.weight.requires_grad_(True); extra.append(mod.weight)
    if "head" in WIDE:
        w = adapter.head().weight; w.requires_grad_(True); extra.append(w)
    if "embed" in WIDE:
        for e in adapter.embeddings():
            e.weight.requires_grad_(True); extra.append(e.weight)
    seen = {id(p) for p in t.params}
    extra = [p for p in extra if id(p) not in seen]
    print(f"wide: +{sum(p.numel() for p in extra)} params in {len(extra)} tensors ({sorted(WIDE)})", file=sys.stderr)
    t.params.extend(extra)
    EXTRA_IDS.update(id(p) for p in extra)
    return t

rl.attach = attach
EXTRA_IDS = set()
SCALE = float(os.environ.get("WIDE_LR_SCALE", "1"))
import andactl.passes.recover_train as _rt
class ScaledAdamW(torch.optim.AdamW):
    def __init__(self, params, **kw):
        params = list(params)
        base = [p for p in params if id(p) not in EXTRA_IDS]
        ext = [p for p in params if id(p) in EXTRA_IDS]
        groups = [{"params": base}] + ([{"params": ext, "scaled": True}] if ext else [])
        super().__init__(groups, **kw)
    def step(self, closure=None):
        for g in self.param_groups:
            if g.get("scaled"): g["lr"] *= SCALE
        r = super().step(closure)
        for g in self.param_groups:
            if g.get("scaled"): g["lr"] /= SCALE
        return r
class _Optim:  # stands in for torch.optim in recover_train
    AdamW = ScaledAdamW
class _Torch:
    def __getattr__(self, k): return getattr(torch, k)
    optim = _Optim
_rt.torch = _Torch()

if "head" in WIDE:
    class HeadLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, h, w, b, h_t, w_t, b_t, labels, kd, ce, chunk, stats):
            with torch.no_grad():
                n = h.shape[0]
                gh = torch.zeros(h.shape, dtype=torch.float32); gw = torch.zeros(w.shape, dtype=torch.float32)
                kl_sum = 0.0
                hf = h.float(); wf = w.float()
                for i in range(0, n, chunk):
                    s = hf[i:i + chunk] @ wf.t()
                    logp = torch.log_softmax(s, -1); p = logp.exp()
                    logp_t = torch.log_softmax(h_t[i:i + chunk].float() @ w_t.float().t(), -1); p_t = logp_t.exp()
                    kl_sum += float((p_t * (logp_t - logp)).sum(dtype=torch.float64))
                    g = (kd / n) * (p - p_t)
                    gh[i:i + chunk] = g @ wf
                    gw += g.t() @ hf[i:i + chunk]
                stats.update(kl=kl_sum / n, ce=0.0)
            ctx.save_for_backward(gh, gw); ctx.dt = (h.dtype, w.dtype)
            return h.new_tensor(kd * kl_sum / n, dtype=torch.float32)

        @staticmethod
        def backward(ctx, go):
            gh, gw = ctx.saved_tensors
            return (gh * go).to(ctx.dt[0]), (gw * go).to(ctx.dt[1]), *([None] * 9)

    import andactl.passes.recover_train as rt
    _orig_hl = rloss.head_loss
    def head_loss(h, head, labels=None, h_teacher=None, teacher_head=None, kd_weight=1.0, ce_weight=0.0,
                  chunk=rloss.DEFAULT_CHUNK, stats=None):
        if torch.is_grad_enabled() and head.weight.requires_grad and labels is None and h_teacher is not None:
            assert head.bias is None and teacher_head.bias is None
            return HeadLoss.apply(h, head.weight, None, h_teacher.detach(), teacher_head.weight.detach(), None,
                                  None, float(kd_weight), 0.0, int(chunk), stats if stats is not None else {})
        return _orig_hl(h, head, labels, h_teacher, teacher_head, kd_weight, ce_weight, chunk, stats)
    rloss.head_loss = head_loss
    rt.head_loss = head_loss

from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[1:]
main()
