"""Scratch: prune MLP neurons of the dense model (no slicing) uniformly to DROP per layer; save an HF folder.
Same score as prune_mlp.py: E[a_i^2] * ||W_down[:, i]||^2 on alpaca train text (16 x 1024, seed 7)."""
import sys, torch
from andactl.models.loading import load_model
from andactl.data.datasets import load_text_rows
from andactl.data.calibration import sample_token_runs
torch.set_num_threads(2)
drop, dst = int(sys.argv[1]), sys.argv[2]
lm = load_model("smollm2-135m", "float32")
model, tok = lm.model, lm.tokenizer
layers = model.model.layers
L, inter = len(layers), layers[0].mlp.down_proj.weight.shape[1]
energy = [torch.zeros(inter, dtype=torch.float64) for _ in range(L)]
def hook(i):
    def f(mod, args):
        energy[i] += args[0].detach().double().reshape(-1, inter).pow(2).sum(0)
    return f
hs = [layers[i].mlp.down_proj.register_forward_pre_hook(hook(i)) for i in range(L)]
runs = sample_token_runs(load_text_rows("alpaca", "train", "/work/shared/data"), tok, 16, 1024, seed=7)
with torch.no_grad():
    for r in runs:
        model(input_ids=torch.tensor([r]))
for h in hs: h.remove()
keep_n = inter - drop
for i, layer in enumerate(layers):
    mlp = layer.mlp
    score = energy[i] * mlp.down_proj.weight.detach().double().pow(2).sum(0)
    idx = torch.argsort(score, descending=True)[:keep_n].sort().values
    for name in ("gate_proj", "up_proj"):
        lin = getattr(mlp, name)
        new = torch.nn.Linear(lin.in_features, keep_n, bias=False)
        new.weight.data = lin.weight.data[idx].clone()
        setattr(mlp, name, new)
    new = torch.nn.Linear(keep_n, mlp.down_proj.out_features, bias=False)
    new.weight.data = mlp.down_proj.weight.data[:, idx].clone()
    mlp.down_proj = new
model.config.intermediate_size = keep_n
print("params", sum(p.numel() for p in model.parameters()) / 1e6, "M", flush=True)
model.save_pretrained(dst)
tok.save_pretrained(dst)
