"""Scratch: does a global scale on the sliced model's weightless RMSNorm outputs lower alpaca loss?"""
import sys, torch
from andactl.models.artifact_loader import load_artifact, load_tokenizer
from andactl.models.modules import RMSN
from andactl.data.datasets import load_text_rows
from andactl.data.calibration import sample_token_runs
from pathlib import Path
path = Path(sys.argv[1])
model = load_artifact(path, dtype=torch.float32)
model = model[0] if isinstance(model, tuple) else model
tok = load_tokenizer(path)
rows = load_text_rows("alpaca", "train", "/work/shared/data")
runs = sample_token_runs(rows, tok, 8, 512, seed=123)
ids = torch.tensor(runs)
orig = RMSN.forward
torch.set_num_threads(2)
final = model.model.norm
for spec in sys.argv[2:]:
    c, cf = (float(v) for v in spec.split(","))
    RMSN.forward = lambda self, x, c=c, cf=cf: orig(self, x) * (cf if self is final else c)
    with torch.no_grad():
        tot = 0.0
        for i in range(0, len(ids), 4):
            out = model(input_ids=ids[i:i+4], labels=ids[i:i+4])
            tot += float(out.loss) * len(ids[i:i+4])
    print(f"c={c:.3f} final={cf:.3f} alpaca loss {tot/len(ids):.4f}", flush=True)
