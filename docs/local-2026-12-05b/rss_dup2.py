"""RSS of a loaded packed artifact: after load, after building every fused operand (prepack), after
a forward of 8 tokens, after 64-token forwards (torch's allocator reusing freed chunks)."""
import sys, gc, torch, andactl
from andactl.models.anda_linear import AndaLinear
def rss():
    v = {}
    for l in open("/proc/self/status"):
        if l.startswith(("VmRSS", "RssAnon", "RssFile")): v[l.split(":")[0]] = int(l.split()[1]) / 1024
    print({k: round(x) for k, x in v.items()}, file=sys.stderr)
    return v["VmRSS"]
torch.set_num_threads(2)
r0 = rss()
model, _ = andactl.load(sys.argv[1], dtype="bfloat16")
r1 = rss()
mods = [m for m in model.modules() if isinstance(m, AndaLinear)]
groups = {id(m.siblings): m.siblings for m in mods if m.siblings is not None}
for m in mods:
    m.fused_operands()
for g in groups.values():
    g.operands()
gc.collect()
r2 = rss()
import ctypes
ctypes.CDLL("libc.so.6").malloc_trim(0)
r2t = rss()
with torch.no_grad():
    model(torch.ones(1, 8, dtype=torch.long))
    r3 = rss()
    for _ in range(3):
        model(torch.ones(4, 64, dtype=torch.long))
r4 = rss()
print(f"{sys.argv[2] if len(sys.argv) > 2 else ''}: start {r0:.0f}, loaded {r1:.0f}, prepacked {r2:.0f} (+{r2-r1:.0f}), trimmed {r2t:.0f}, "
      f"first forward {r3:.0f}, after 4x64-token forwards {r4:.0f} MB")
