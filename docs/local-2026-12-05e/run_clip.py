"""python run_clip.py {minmax|clip} ANDACTL-ARGS...: the CLI with group_params patched to a shrink search."""
import sys, torch
import andactl.formats.int4 as I
import andactl.passes.gptq as G
orig = I.group_params

def clipped(w, symmetric):
    s0, z0 = orig(w, symmetric)
    w = w.float()
    def err(s, z):
        q = I.quantize_codes(w, s[:, None], z[:, None])
        return ((q - z[:, None]) * s[:, None] - w).pow(2).sum(1)
    be = err(s0, z0); bs, bz = s0, z0
    if symmetric:
        am = w.abs().amax(1)
    else:
        lo0 = w.amin(1).clamp(max=0); hi0 = w.amax(1).clamp(min=0)
    for i in range(1, 21):
        p = 1 - 0.01 * i
        if symmetric:
            s = I.fp16_scale_up(torch.where(am > 0, am * p / 7.5, torch.ones_like(am))); z = z0
        else:
            lo, hi = lo0 * p, hi0 * p
            s = I.fp16_scale_up(torch.where(hi > lo, (hi - lo) / 15, torch.ones_like(hi)))
            z = torch.round(-lo / s).clamp(0, 15)
        e = err(s, z); m = e < be
        be = torch.where(m, e, be); bs = torch.where(m, s, bs); bz = torch.where(m, z, bz)
    return bs, bz

mode = sys.argv[1]
if mode == "clip":
    I.group_params = clipped; G.group_params = clipped
from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[2:]
main()
