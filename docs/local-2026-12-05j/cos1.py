"""First torch.cos call in a fresh process vs the second, same input (scratch)."""
import sys, torch
if len(sys.argv) > 1 and sys.argv[1] == "mm":
    a = torch.ones(256, 1024); torch.mm(a, torch.ones(1024, 1024))
inv = 1.0 / (100000 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64))
pos = torch.arange(512, dtype=torch.float32)
emb = torch.cat([torch.outer(pos, inv)] * 2, dim=-1)[None]
c1 = emb.cos(); c2 = emb.cos(); c3 = emb.cos()
d = (c1 != c2)
print(sys.argv[1:], "first!=second:", int(d.sum()), "second!=third:", int((c2 != c3).sum()),
      "max|diff|", float((c1 - c2).abs().max()), "where", d.nonzero()[:3].tolist())
