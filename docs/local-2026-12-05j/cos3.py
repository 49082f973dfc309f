"""First big torch.cos after warming the OpenMP pool (PRE=add|mm|bf16mm|none), WARM=small fix (scratch)."""
import os, sys, torch
pre = os.environ.get("PRE", "none")
if os.environ.get("WARM") == "small":
    torch.ones(8).cos()
if pre == "add":
    torch.ones(1 << 22).add_(1)
elif pre == "mm":
    a = torch.ones(256, 1024); torch.mm(a, torch.ones(1024, 1024))
elif pre == "bf16mm":
    for dt in (torch.float32, torch.bfloat16):
        a = torch.ones(256, 1024, dtype=dt); torch.mm(a, torch.ones(1024, 1024, dtype=dt))
inv = 1.0 / (100000 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64))
emb = torch.cat([torch.outer(torch.arange(512, dtype=torch.float32), inv)] * 2, dim=-1)[None]
c1 = emb.cos(); c2 = emb.cos()
print(pre, os.environ.get("WARM", "-"), "differs" if bool((c1 != c2).any()) else "same")
