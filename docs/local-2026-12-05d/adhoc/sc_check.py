import torch, time, os
from andactl.kernels import build, shortcut
build.load()
print(shortcut.has_cpu_kernel(), os.environ.get("ANDA_CPU_ISA"))
torch.manual_seed(0)
worst = {}
for dt in (torch.float32, torch.bfloat16, torch.float16):
  for T,din,dout in ((1,432,432),(4,432,576),(3,37,53),(1,16,200),(16,432,432),(5,64,71),(7,9,130)):
    r=torch.randn(T,din).to(dt); S=(torch.randn(din,dout)/din**0.5).to(dt); u=torch.randn(T,dout).to(dt)
    got=torch.ops.andactl.shortcut_add(r,S,u).float(); tref=shortcut.shortcut_add_reference(r,S,u).float()
    worst[dt]=max(worst.get(dt,0),(got-tref).abs().max().item())
print(worst)
torch.set_num_threads(1)
for dt in (torch.bfloat16, torch.float32):
  for T in (1,4,8,16,32):
    r=torch.randn(T,432).to(dt); S=torch.randn(432,432).to(dt); u=torch.randn(T,432).to(dt)
    out=[]
    for f,name in ((lambda: torch.ops.andactl.shortcut_add(r,S,u),'ours'),(lambda: torch.matmul(r,S)+u,'torch')):
      for _ in range(20): f()
      t=time.perf_counter(); n=200
      for _ in range(n): f()
      out.append(f"{name} {(time.perf_counter()-t)/n*1e6:.1f}")
    print(dt,T,*out,'us')
