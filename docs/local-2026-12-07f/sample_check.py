"""Stop 58, AMD EPYC Zen 4: stop 53's sampling fit (docs/local-2026-12-07a/sample_fit.py, fitted on the
Xeon with AMX) checked on this CPU: measured decode-step times of sample_from_model (float32) beside
what andactl.dry_run.sampling_seconds_and_bytes predicts at the run rate probed before and after.
    python sample_check.py
Run on ae1860b, before andactl/dry_run.py became a package (113d22d); on later code import
probed_rates from andactl.dry_run.rates, model_shape from .shape, sampling_seconds_and_bytes from .sampling.
"""
import json
import time

import torch

import andactl.data.model_text as mt
from andactl.dry_run import model_shape, probed_rates, sampling_seconds_and_bytes
from andactl.models.loading import load_model

torch.set_num_threads(2)
before = probed_rates("float32")
shape = model_shape("smollm2-135m")
lm = load_model("smollm2-135m", "float32", "cpu")
vocab = mt.model_vocab(lm.model, lm.tokenizer)
out = {"rates_before": before, "steps": []}
for rows, seqlen in [(8, 256), (16, 256), (64, 256), (8, 1024)]:
    t0 = time.perf_counter()
    mt.sample_from_model(lm.model, vocab, rows, seqlen, 0, batch_size=rows)
    dt = time.perf_counter() - t0
    pred = sampling_seconds_and_bytes(shape, rows, rows, seqlen, 4, before["run"])[0]
    out["steps"].append({"rows": rows, "seqlen": seqlen, "seconds": round(dt, 2), "predicted_seconds": round(pred, 2),
                         "ms_per_step": round(dt / (seqlen - 1) * 1e3, 2), "ratio": round(pred / dt, 3)})
    print(out["steps"][-1], flush=True)
out["rates_after"] = probed_rates("float32")
print(json.dumps(out))
