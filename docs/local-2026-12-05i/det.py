import hashlib, sys, torch
from andactl.models.loading import load_model
m = load_model("smollm2-135m").model.eval()
ids = torch.randint(0, 49152, (4, 512), generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    out = m(ids).logits
    h = m.model(ids).last_hidden_state
print(hashlib.sha256(out.numpy().tobytes()).hexdigest()[:12], hashlib.sha256(h.numpy().tobytes()).hexdigest()[:12])
x = torch.randn(2048, 576, generator=torch.Generator().manual_seed(1))
H = x.t() @ x
w = torch.randn(1536, 576, generator=torch.Generator().manual_seed(2))
y = torch.nn.functional.linear(x, w)
print("mm", hashlib.sha256(H.numpy().tobytes()).hexdigest()[:12], hashlib.sha256(y.numpy().tobytes()).hexdigest()[:12])
