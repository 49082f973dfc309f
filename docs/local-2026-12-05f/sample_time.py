"""Seconds per sampling step of sample_from_model on SmolLM2 (float32) at batch 1, 8, 16."""
import time, torch
from andactl.models.loading import load_model
from andactl.data.model_text import model_vocab, sample_from_model
from andactl.dry_run import cpu_flops
lm = load_model("smollm2-135m")
m, tok = lm.model, lm.tokenizer
v = model_vocab(m, tok)
print("rates", {k: f"{x:.3g}" for k, x in cpu_flops(torch.float32).items()}, "threads", torch.get_num_threads())
for b in (1, 8, 16):
    for steps in (64, 192):
        t0 = time.perf_counter()
        sample_from_model(m, v, b, steps + 1, seed=1, batch_size=b)
        dt = time.perf_counter() - t0
        print(f"batch {b} steps {steps}: {dt:.2f} s, {dt / steps * 1e3:.1f} ms/step", flush=True)
