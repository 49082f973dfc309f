import torch, time, torch.nn.functional as F
torch.set_num_threads(2)
B,H,KVH,S,D=8,9,3,576,64
G=H//KVH
def bench(f, n=200):
    for _ in range(10): f()
    t=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-t)/n*1e6
for dt in (torch.bfloat16,):
    q=torch.randn(B,H,1,D,dtype=dt); 
    kb=torch.randn(B,KVH,1024,D,dtype=dt); vb=torch.randn(B,KVH,1024,D,dtype=dt)
    k=kb[:,:,:S]; v=vb[:,:,:S]; kc=k.contiguous(); vc=v.contiguous()
    sc=D**-0.5
    ref=F.scaled_dot_product_attention(q.float(),kc.float().repeat_interleave(G,1),vc.float().repeat_interleave(G,1))
    def sdpa_view(): return F.scaled_dot_product_attention(q,k,v,scale=sc,enable_gqa=True)
    def sdpa_cont(): return F.scaled_dot_product_attention(q,kc,vc,scale=sc,enable_gqa=True)
    def sdpa_rep(): return F.scaled_dot_product_attention(q,kc.repeat_interleave(G,1),vc.repeat_interleave(G,1),scale=sc)
    def manual():
        qq=q.view(B,KVH,G,D)
        s=torch.matmul(qq,k.transpose(-1,-2)).float()*sc
        p=torch.softmax(s,-1).to(dt)
        return torch.matmul(p,v).view(B,H,1,D)
    def manual32():
        qq=q.view(B,KVH,G,D)
        s=torch.matmul(qq,k.transpose(-1,-2),out_dtype=torch.float32) if False else torch.matmul(qq.float(),k.float().transpose(-1,-2))
        p=torch.softmax(s*sc,-1)
        return torch.matmul(p,v.float()).to(dt).view(B,H,1,D)
    def sdpa_pack(): return F.scaled_dot_product_attention(q.view(B,KVH,G,D),k,v,scale=sc).view(B,H,1,D)
    def sdpa_pack32(): return F.scaled_dot_product_attention(q.view(B,KVH,G,D).float(),k.float(),v.float(),scale=sc).view(B,H,1,D).to(dt)
    for name,f in [("sdpa packgqa",sdpa_pack),("sdpa pack fp32",sdpa_pack32),("sdpa view",sdpa_view),("sdpa contiguous",sdpa_cont),("sdpa repeat",sdpa_rep),("manual bf16",manual),("manual fp32",manual32)]:
        o=f(); err=(o.float()-ref).abs().max().item()
        print(f"{name:16s} {bench(f):8.1f} us  maxerr {err:.3g}")
