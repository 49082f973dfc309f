import torch, time
import torch.nn.functional as F
torch.set_num_threads(2)
x = torch.randn(8,1,576).bfloat16(); w = torch.randn(576).bfloat16()
def norm(x, w, eps=1e-5):
    dt = x.dtype; h = x.float(); h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps); return w * h.to(dt)
def rot(x, cos, sin):
    d = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., d:], x[..., :d]), -1) * sin
q = torch.randn(8,9,1,64).bfloat16(); cos = torch.randn(8,1,1,64).bfloat16(); sin=cos.clone()
g = torch.randn(8,1,1536).bfloat16()
def t(f, n=2000):
    with torch.inference_mode():
        for _ in range(100): f()
        s = time.perf_counter()
        for _ in range(n): f()
        return (time.perf_counter()-s)/n*1e6
print("norm", t(lambda: norm(x, w)))
print("F.rms_norm", t(lambda: F.rms_norm(x, (576,), w, 1e-5)))
print("rot", t(lambda: rot(q, cos, sin)))
print("add", t(lambda: x + x))
print("silu*mul", t(lambda: F.silu(g) * g))
print("empty", t(lambda: torch.empty(8,1,576)))
