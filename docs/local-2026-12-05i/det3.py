import hashlib, torch
from andactl.passes.gptq import HessianAccumulator
g = torch.Generator().manual_seed(0)
out = []
for K in (576, 1536):
    acc = HessianAccumulator(K)
    for _ in range(8):
        acc.add(torch.randn(512, K, generator=g))
    out.append(hashlib.sha256(acc.H.numpy().tobytes()).hexdigest()[:10])
print(*out)
