"""Stop 59 probe: a uniform weight soup (Wortsman et al. 2022) of recovered artifacts of one slice.

usage: python soup.py OUT IN1 IN2 [...]. Every tensor of model.safetensors is averaged in float32 and
stored in the inputs' dtype; the other files (config, tokenizer, recipe, report) are copied from IN1.
The inputs must hold the same keys and shapes (the same slice), else it stops before writing.
"""
import shutil
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

out, ins = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
handles = [safe_open(str(p / "model.safetensors"), "pt") for p in ins]
keys = set(handles[0].keys())
assert all(set(h.keys()) == keys for h in handles), "inputs hold different tensors"
meta = handles[0].metadata()
soup = {}
for k in sorted(keys):
    ts = [h.get_tensor(k) for h in handles]
    assert all(t.shape == ts[0].shape for t in ts), k
    soup[k] = (sum(t.float() for t in ts) / len(ts)).to(ts[0].dtype)
if out.exists():
    shutil.rmtree(out)
shutil.copytree(ins[0], out)
save_file(soup, str(out / "model.safetensors"), metadata=meta)
print(f"{out}: mean of {len(ins)} ({', '.join(map(str, ins))}), {len(keys)} tensors", file=sys.stderr)
