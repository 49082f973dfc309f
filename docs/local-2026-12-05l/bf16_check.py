import sys; sys.path.insert(0, 'tests')
import torch
from test_tied_head import _sliced, _logits
import andactl.passes.slice as slice_pass
class MP:
    def setattr(self, o, n, v): setattr(o, n, v)
for fam in ("llama", "opt"):
    for dtype in (torch.float32, torch.bfloat16):
        orig = slice_pass.one_table
        tied = _sliced(fam, dtype)
        untied = _sliced(fam, dtype, one_table=False, monkeypatch=MP())
        slice_pass.one_table = orig
        h = tied.model.get_output_embeddings()
        ok = type(h).__name__
        a, b = _logits(tied.model).float(), _logits(untied.model).float()
        print(fam, dtype, ok, "max|diff|", round((a - b).abs().max().item(), 5), "max|logit|", round(b.abs().max().item(), 3),
              "map max", round(h.pre.weight.abs().max().item(), 3) if ok == "TiedHead" else None)
