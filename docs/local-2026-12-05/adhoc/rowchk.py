import torch
from andactl.kernels import build, rows
build.load()
g = torch.Generator().manual_seed(0)
for dt in (torch.float32, torch.bfloat16, torch.float16):
    for wdt in (None, torch.float32, torch.bfloat16, torch.float16):
        x = (torch.randn(8, 1, 576, generator=g) * 3).to(dt)
        w = None if wdt is None else torch.randn(576, generator=g).to(wdt)
        a = torch.ops.andactl.rms_norm(x, w, 1e-5, 576.0); b = rows.rms_norm_reference(x, w, 1e-5, 576)
        print("norm", dt, wdt, a.dtype == b.dtype, (a.float() - b.float()).abs().max().item(), (a != b).sum().item())
    q = torch.randn(8, 1, 9, 64, generator=g).to(dt).transpose(1, 2)
    cos = torch.randn(1, 1, 1, 64, generator=g).to(dt); sin = torch.randn(1, 1, 1, 64, generator=g).to(dt)
    a = torch.ops.andactl.rotary(q, cos, sin); b = rows.rotary_reference(q, cos, sin)
    print("rope", dt, torch.equal(a, b))
import time
x = torch.randn(8,1,576).bfloat16(); w = torch.randn(576).bfloat16()
with torch.inference_mode():
    for f, n in ((lambda: torch.ops.andactl.rms_norm(x, w, 1e-5, 576.0), "op"), (lambda: rows.rms_norm_reference(x, w, 1e-5, 576), "ref")):
        for _ in range(100): f()
        t = time.perf_counter()
        for _ in range(2000): f()
        print(n, (time.perf_counter() - t) / 2000 * 1e6, "us")
