import hashlib, torch
from andactl.models.loading import load_model
m = load_model("smollm2-135m").model.eval()
ids = torch.randint(0, 49152, (4, 512), generator=torch.Generator().manual_seed(0))
out = []
with torch.no_grad():
    for mask in (None, torch.ones_like(ids)):
        h = m.model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True).hidden_states[1]
        out.append(hashlib.sha256(h.numpy().tobytes()).hexdigest()[:10])
print(*out)
