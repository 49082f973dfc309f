import os, sys, torch
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models import decode_attention
from andactl.evaluation import throughput
torch.set_num_threads(2)
m = load_model("/work/runs/hl/q1", "bfloat16", "cpu").model.eval(); set_model_backend(m, "auto", "cpu"); decode_attention.enable(m)
for rep in range(3):
    for pf in (False, True):
        if pf: os.environ["ANDA_PF"] = "1"
        else: os.environ.pop("ANDA_PF", None)
        r = throughput.measure(m, 8, 512, 64)
        print("pf" if pf else "--", f"{r.decode_ms_per_token:.2f} ms/step", flush=True)
