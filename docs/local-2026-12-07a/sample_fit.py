"""Stop 53: decode-step times of sample_from_model (draw_tokens) at several row counts and lengths, beside
the dry run's probed rates (child process, before and after), to refit the sampling time model.
    python sample_fit.py
"""
import json
import time

import torch

import andactl.data.model_text as mt
from andactl.dry_run import probed_rates
from andactl.models.loading import load_model

torch.set_num_threads(2)
before = probed_rates("float32")
lm = load_model("smollm2-135m", "float32", "cpu")
vocab = mt.model_vocab(lm.model, lm.tokenizer)
out = {"rates_before": before, "steps": []}
for rows, seqlen in [(8, 256), (16, 256), (32, 256), (64, 256), (8, 1024)]:
    t0 = time.perf_counter()
    mt.sample_from_model(lm.model, vocab, rows, seqlen, 0, batch_size=rows)
    dt = time.perf_counter() - t0
    out["steps"].append({"rows": rows, "seqlen": seqlen, "seconds": round(dt, 2), "ms_per_step": round(dt / (seqlen - 1) * 1e3, 2)})
    print(out["steps"][-1], flush=True)
out["rates_after"] = probed_rates("float32")
print(json.dumps(out))
