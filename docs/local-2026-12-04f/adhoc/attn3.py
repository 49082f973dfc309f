import torch, time, torch.nn.functional as F
from andactl.kernels import attention, build
build.load(); torch.set_num_threads(2)
B,H,KVH,S,D,L=8,9,3,576,64,30
dt=torch.bfloat16
q=torch.randn(B,H,1,D,dtype=dt)
kv=[(torch.randn(B,KVH,1024,D,dtype=dt)[:,:,:S], torch.randn(B,KVH,1024,D,dtype=dt)[:,:,:S]) for _ in range(L)]
junk=torch.randn(64*2**20//4)
def run(f, n=20):
    for _ in range(3):
        for k,v in kv: f(k,v)
    t=time.perf_counter()
    for _ in range(n):
        for k,v in kv: f(k,v)
    return (time.perf_counter()-t)/n/L*1e6
sc=D**-0.5
print("ours", run(lambda k,v: attention.decode_attention(q,k,v,sc)))
print("sdpa", run(lambda k,v: F.scaled_dot_product_attention(q,k,v,scale=sc,enable_gqa=True)))
print("ksum+vsum", run(lambda k,v: (k.sum(), v.sum())))
print("k.float+v.float", run(lambda k,v: (k.float(), v.float())))
torch.set_num_threads(1)
print("ours 1 thread", run(lambda k,v: attention.decode_attention(q,k,v,sc)))
