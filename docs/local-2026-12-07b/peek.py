import os, torch
from pathlib import Path
from andactl.models.loading import load_model
from andactl.passes.recover_data import dataset_text
from andactl.data.model_text import model_vocab
src = open("seeded.py").read().split("rec.Recover._text")[0]
ns = {}; exec(src, ns)
lm = load_model("smollm2-135m")
d = dataset_text("alpaca", lm.tokenizer, 1213, 8, 256, 42, Path(os.environ["ANDACTL_DATA_DIR"]))
L = ns["prompt_lengths"](d.train); print("mean", L.float().mean(), "capped", (L == 128).sum(), "min", L.min())
ids = ns["sample_seeded"](lm.model, model_vocab(lm.model, lm.tokenizer), d.train[:3], 200, 42, 3, "cpu")
for r, n in zip(ids, L[:3]): print(repr(lm.tokenizer.decode(r[:n])[-80:]), "=>", repr(lm.tokenizer.decode(r[n:])[:400]), "\n")
