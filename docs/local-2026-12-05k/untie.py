"""Scratch (stop 40): an exactly untied copy of a one-table sliced artifact, for an A/B of the
quantization with bit-identical decoder bodies. python untie.py SRC DST"""
import dataclasses, sys
import torch
from torch import nn
from andactl.models.artifact_loader import load_artifact
from andactl.formats.artifact import save_artifact
from andactl.formats.records import SECTION

src, dst = sys.argv[1:3]
model, tok, meta = load_artifact(src, torch.float32)
records = meta.pop("records")
head, emb = model.get_output_embeddings(), model.get_input_embeddings()
with torch.no_grad():
    H = (head.table.weight.double() @ head.pre.weight.double()).float()  # [V, head_in]
    lin = nn.Linear(H.shape[1], H.shape[0], bias=False)
    lin.weight = nn.Parameter(H)
    plain = nn.Embedding.from_pretrained(emb.weight.detach().clone(), freeze=False)
model.set_output_embeddings(lin)
model.set_input_embeddings(plain)
records.slicing = dataclasses.replace(records.slicing, tied_head=False)
records.norms = dataclasses.replace(records.norms, tied_source=False)
keep = {k: v for k, v in meta.items() if k in ("base_model", "provenance", "dense_parameters",
                                               "dense_block_linear_parameters", "provides", "history")}
save_artifact(dst, model, tok, keep, records=records, storage_dtype="fp16", overwrite=True)
m2, _, _ = load_artifact(dst, torch.float32)
ids = torch.arange(100).reshape(1, 100) + 1000
with torch.no_grad():
    a, b = model(ids).logits, m2(ids).logits
print("max |logits diff| untied in memory vs saved:", (a - b).abs().max().item())
