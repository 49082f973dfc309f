import sys; sys.path.insert(0,'tests')
import torch
from test_tied_head import _sliced, _logits
for fam in ("llama","opt"):
    r = _sliced(fam, dtype=torch.float32, steps=[{"pass": "quantize_tables", "method": "rtn"}])
    g = _sliced(fam, dtype=torch.float32, steps=[{"pass": "quantize_tables", "method": "gptq"}])
    a, b = [c.model.get_output_embeddings().table for c in (r, g)]
    print(fam, (a.weight_packed != b.weight_packed).sum().item(), a.weight_packed.numel(), g.report if hasattr(g,'report') else '')
