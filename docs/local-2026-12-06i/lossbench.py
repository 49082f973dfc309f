import time, torch
from andactl.passes.recover_loss import head_loss, SplitHeads
from andactl.passes.recover_topk import topk_of_logits
torch.manual_seed(0)
V, d, dt, N = 49152, 576, 576, 1020
head = torch.nn.Linear(d, V, bias=False); th = torch.nn.Linear(dt, V, bias=False)
for m in (head, th): m.weight.requires_grad_(False); m.weight.mul_(3)
h = torch.randn(N, d, requires_grad=True); h_t = torch.randn(N, dt)
with torch.no_grad():
    lt = h_t @ th.weight.T
    idx, logp, tail = topk_of_logits(lt, 64)
splits = SplitHeads.choose("split", torch.device("cpu"), 1)
for name, kw in [("inproc", dict(h_teacher=h_t, teacher_head=th)), ("topk", dict(teacher_topk=(idx, logp, tail)))]:
    ts = []
    for _ in range(6):
        t0 = time.perf_counter(); loss = head_loss(h, head, splits=splits, **kw); loss.backward(); ts.append(time.perf_counter() - t0)
    print(name, [round(t, 3) for t in ts])
