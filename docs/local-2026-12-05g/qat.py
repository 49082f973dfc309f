"""Scratch: `andactl recover --full` with the trained linears' weights fake-quantized to INT4 (asymmetric groups
of 64 along the input, min/max range, straight-through gradient) in every forward; the latent float weights are
saved (parametrizations removed before merge), for `andactl quantize` to quantize. Usage: python qat.py recover ARGS"""
import sys
import torch
from torch import nn
from torch.nn.utils import parametrize
import andactl.passes.recover_lora as rl

GROUP = 64


class FakeInt4(nn.Module):
    def forward(self, w):
        parts = []
        for g in w.float().split(GROUP, dim=1):  # groups of 64 along the input, the last one possibly shorter
            lo, hi = g.amin(1, keepdim=True).clamp_max(0), g.amax(1, keepdim=True).clamp_min(0)  # range holds 0
            s = ((hi - lo) / 15).clamp_min(1e-8)
            parts.append(((g - lo) / s).round().clamp(0, 15) * s + lo)
        q = torch.cat(parts, 1).to(w.dtype)
        return w + (q - w).detach()


_attach, _merge = rl.attach, rl.merge
WRAPPED = []


def attach(model, adapter, full, *a, **k):
    t = _attach(model, adapter, full, *a, **k)
    assert full
    mods = dict(model.named_modules())
    for name in rl.target_names(adapter):
        m = mods[name]
        if True:
            parametrize.register_parametrization(m, "weight", FakeInt4())
            WRAPPED.append(m)
    ids = {id(p) for p in t.params}
    assert all(id(m.parametrizations.weight.original) in ids for m in WRAPPED)  # the same Parameter objects
    print(f"qat: {len(WRAPPED)} linears fake-quantized, {len(t.params)} tensors trained", file=sys.stderr)
    return t


def merge(model, t):
    for m in WRAPPED:
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    return _merge(model, t)


rl.attach, rl.merge = attach, merge
from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[1:]
main()
