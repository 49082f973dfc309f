import sys, time, torch
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models import decode_attention
from andactl.evaluation import throughput
torch.set_num_threads(2)
B = int(sys.argv[1]); P = int(sys.argv[2])
for src in sys.argv[3:]:
    m = load_model(src, "bfloat16", "cpu").model.eval(); set_model_backend(m, "auto", "cpu")
    for rep in range(2):
        for fast in (False, True):
            if fast: decode_attention.enable(m)
            else: decode_attention.disable(m)
            r = throughput.measure(m, B, P, 64)
            print(src, "fast" if fast else "sdpa", f"decode {r.decode_ms_per_token:.2f} ms/step  prefill {r.ttft_ms:.0f} ms  sg {r.slicegpt_tok_s:.0f}", flush=True)
