"""Random OPT-125m shape: one table (+1 column) vs SliceGPT's untied head at 25%: logits, counts, time."""
import sys, time, json
sys.path.insert(0, 'benchmarks'); sys.path.insert(0, 'tests')
import torch
from pathlib import Path
from random_models import write_model
from transformers import AutoModelForCausalLM
from andactl.context import PassContext
from andactl.data.calibration import CalibrationData
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter
from andactl.models.stats import count_parameters
import andactl.passes.slice as slice_pass
path = write_model("opt-125m", Path("/work/s41"))
torch.manual_seed(0)
cal = torch.randint(2, 49152, (8, 256))
ids = torch.randint(2, 49152, (2, 128))
out = {}
for one in (True, False):
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    # random LayerNorm affines, so the fit sees a real g and beta
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, m in model.named_modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g)); m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
    dense_params = count_parameters(model)
    with torch.no_grad():
        ref = model(ids).logits
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None)
    ctx._calibration = CalibrationData(cal, torch.ones_like(cal), 4)
    orig = slice_pass.one_table
    if not one:
        slice_pass.one_table = lambda ctx: False
    t0 = time.time()
    PassManager.from_recipe([{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}]).run(ctx)
    slice_pass.one_table = orig
    secs = [(p["pass"], p["seconds"]) for p in ctx.report["passes"]]
    with torch.no_grad():
        lo = model(ids).logits
    out[one] = lo
    print(json.dumps({"one_table": one, "dense_params": dense_params, "sliced_params": count_parameters(model),
                      "ratio": round(count_parameters(model) / dense_params, 4), "pass_seconds": secs,
                      "table": list(model.get_output_embeddings().weight.shape) if not one else list(model.get_output_embeddings().table.weight.shape),
                      "max_abs_logit_vs_dense": (lo - ref).abs().max().item()}), flush=True)
print("max |one-table - untied| logits:", (out[True] - out[False]).abs().max().item(), "max |logit|", out[False].abs().max().item())
