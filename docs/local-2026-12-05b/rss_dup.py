"""RSS of a loaded packed artifact before / after its first forward (prepacked copies built)."""
import sys, resource, torch
import andactl
def rss():
    for l in open("/proc/self/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
path = sys.argv[1]
torch.set_num_threads(2)
r0 = rss()
model, _tok = andactl.load(path, dtype="bfloat16" if len(sys.argv) > 2 else None)


r1 = rss()
with torch.no_grad():
    model(torch.ones(1, 8, dtype=torch.long))
r2 = rss()
from andactl.models.anda_linear import AndaLinear
canon = sum(sum(t.numel() * t.element_size() for t in (mm.weight_packed, mm.weight_scale, mm.weight_zero_point) if t is not None)
            for mm in model.modules() if isinstance(mm, AndaLinear))
print(f"before load {r0:.0f} MB, loaded {r1:.0f} MB, after first forward {r2:.0f} MB (+{r2-r1:.0f}); canonical INT4 state {canon/2**20:.1f} MB")
