import torch, time, torch.nn.functional as F, os
from andactl.kernels import attention, build
build.load()
torch.set_num_threads(2)
def bench(f, n=200):
    for _ in range(10): f()
    t=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-t)/n*1e6
for B,S in ((8,576),(1,576),(8,2048)):
  H,KVH,D=9,3,64
  for dt in (torch.bfloat16, torch.float32):
    q=torch.randn(B,H,1,D,dtype=dt)
    kb=torch.randn(B,KVH,S+300,D,dtype=dt); vb=torch.randn(B,KVH,S+300,D,dtype=dt)
    k=kb[:,:,:S]; v=vb[:,:,:S]; sc=D**-0.5
    ref=F.scaled_dot_product_attention(q.float(),k.float(),v.float(),scale=sc,enable_gqa=True)
    o=attention.decode_attention(q,k,v,sc)
    s=F.scaled_dot_product_attention(q,k,v,scale=sc,enable_gqa=True)
    print(B,S,dt, f"sdpa {bench(lambda: F.scaled_dot_product_attention(q,k,v,scale=sc,enable_gqa=True)):.1f} us err {(s.float()-ref).abs().max():.2g}",
          f"ours {bench(lambda: attention.decode_attention(q,k,v,sc)):.1f} us err {(o.float()-ref).abs().max():.2g}")
