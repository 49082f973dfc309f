"""Which first torch.cos call is off, against float64; WARM=small|none before it (scratch)."""
import os, sys, torch
warm = os.environ.get("WARM", "none")
if warm == "small":
    torch.ones(8).cos(); torch.ones(8).sin()
inv = 1.0 / (100000 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64))
pos = torch.arange(512, dtype=torch.float32)
emb = torch.cat([torch.outer(pos, inv)] * 2, dim=-1)[None]
fn = os.environ.get("FN", "cos")
c1 = getattr(emb, fn)(); c2 = getattr(emb, fn)()
t = getattr(emb.double(), fn)()
e1, e2 = float((c1.double() - t).abs().max()), float((c2.double() - t).abs().max())
print(warm, fn, "differs" if bool((c1 != c2).any()) else "same", f"err first {e1:.2e} second {e2:.2e}")
