import torch, time
from andactl.kernels import build
build.load()
torch.set_num_threads(1)
for nmat in (60, 240):
    Ss=[torch.randn(432,432).bfloat16() for _ in range(nmat)]
    r=torch.randn(1,432).bfloat16(); u=torch.randn(1,432).bfloat16()
    for name,f in (("ours",lambda S: torch.ops.andactl.shortcut_add(r,S,u)),("torch",lambda S: torch.matmul(r,S)+u),("sum",lambda S: S.sum())):
        for S in Ss: f(S)
        t=time.perf_counter()
        for _ in range(3):
            for S in Ss: f(S)
        dt=(time.perf_counter()-t)/(3*nmat)
        print(nmat, name, f"{dt*1e6:.1f} us  {432*432*2/dt/1e9:.1f} GB/s")
