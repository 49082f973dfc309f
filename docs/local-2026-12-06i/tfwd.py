import time, torch, andactl
from transformers import AutoModelForCausalLM; m = AutoModelForCausalLM.from_pretrained(__import__("glob").glob("/work/cache-main/models/*/")[0], torch_dtype=torch.float32)
ids = torch.randint(0, 49152, (4, 256))
for ac in (True, False):
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if ac else torch.no_grad()
    ts = []
    with torch.no_grad(), (torch.autocast("cpu", dtype=torch.bfloat16, enabled=ac)):
        for _ in range(6):
            t0 = time.perf_counter(); h = m.model(ids).last_hidden_state; ts.append(time.perf_counter() - t0)
    print("autocast" if ac else "float32", [round(t, 3) for t in ts])
