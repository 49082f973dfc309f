"""Scratch: prune MLP intermediate neurons of a sliced artifact uniformly per layer down to a parameter count.

Score of neuron i in a layer: E[a_i^2] * ||W_down[:, i]||^2 on alpaca train text (a = down_proj's input),
i.e. the energy neuron i writes into the residual stream. Writes a copy of the artifact with the kept rows/columns
and config intermediate_size updated. usage: prune_mlp.py SRC DST TARGET_PARAMS_ARTIFACT
"""
import json, shutil, sys, torch
from pathlib import Path
from safetensors import safe_open
from safetensors.torch import save_file
from andactl.models.artifact_loader import load_artifact
from andactl.data.datasets import load_text_rows
from andactl.data.calibration import sample_token_runs

src, dst, ref = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
torch.set_num_threads(2)
def nparams(p):
    m = load_artifact(p, dtype=torch.float32)[0]
    return sum(t.numel() for t in m.parameters()) + sum(b.numel() for n, b in m.named_buffers() if "shortcut" in n), m
target, _ = nparams(ref)
have, model, = nparams(src)
tok = load_artifact(src, dtype=torch.float32)[1]
layers = model.model.layers
L = len(layers)
d = layers[0].mlp.down_proj.weight.shape[0]
inter = layers[0].mlp.down_proj.weight.shape[1]
drop = -(-(have - target) // (L * 3 * d))
keep_n = inter - drop
print(f"params src {have/1e6:.2f}M target {target/1e6:.2f}M: drop {drop} of {inter} neurons/layer (d={d})", flush=True)
energy = [torch.zeros(inter, dtype=torch.float64) for _ in range(L)]
def hook(i):
    def f(mod, args):
        a = args[0].detach().double().reshape(-1, inter)
        energy[i] += a.pow(2).sum(0)
    return f
hs = [layers[i].mlp.down_proj.register_forward_pre_hook(hook(i)) for i in range(L)]
rows = load_text_rows("alpaca", "train", "/work/shared/data")
runs = sample_token_runs(rows, tok, 16, 1024, seed=7)
with torch.no_grad():
    for r in runs:
        model(input_ids=torch.tensor([r]))
for h in hs: h.remove()
keep = []
for i in range(L):
    w = layers[i].mlp.down_proj.weight.detach().double()
    score = energy[i] * w.pow(2).sum(0)
    idx = torch.argsort(score, descending=True)[:keep_n].sort().values
    keep.append(idx)
    lost = 1 - float(score[idx].sum() / score.sum())
    if i % 5 == 0 or i == L - 1:
        print(f"layer {i}: dropped score share {lost:.4f}", flush=True)
if dst.exists(): shutil.rmtree(dst)
shutil.copytree(src, dst)
out = {}
with safe_open(str(src / "model.safetensors"), "pt") as f:
    meta = f.metadata()
    for k in f.keys():
        t = f.get_tensor(k)
        if ".mlp." in k:
            i = int(k.split(".layers.")[1].split(".")[0])
            t = t[:, keep[i]] if "down_proj" in k else t[keep[i], :]
            t = t.contiguous()
        out[k] = t
save_file(out, str(dst / "model.safetensors"), metadata=meta)
cfg = json.loads((dst / "config.json").read_text())
cfg["intermediate_size"] = keep_n
(dst / "config.json").write_text(json.dumps(cfg, indent=2))
now, _ = nparams(dst)
print(f"written {dst}: {now/1e6:.2f}M params (target {target/1e6:.2f}M)", flush=True)
