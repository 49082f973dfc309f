"""Sliced / packed OPT (stop 41's random OPT-125m artifacts), bf16, 1 thread: generate 32 tokens after a
128-token prompt at batch 1 and 4, shortcuts through the op vs torch (has_cpu_kernel patched),
alternating in one process; ms per generated token (prefill excluded by subtracting a 1-token run)."""
import sys, time, torch
import andactl
from andactl.kernels import shortcut
torch.set_num_threads(1)
real = shortcut.has_cpu_kernel
def run(model, ids, n):
    t = time.perf_counter()
    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return time.perf_counter() - t
for path in sys.argv[1:]:
    model = andactl.load(path, dtype=torch.bfloat16)[0]
    model.generation_config.pad_token_id = 0
    for batch in (1, 4):
        ids = torch.randint(4, 1000, (batch, 128), generator=torch.Generator().manual_seed(0))
        res = {"op": [], "torch": []}
        with torch.inference_mode():
            run(model, ids, 4)
            for rep in range(3):
                for mode in ("op", "torch"):
                    shortcut.has_cpu_kernel = real if mode == "op" else (lambda: False)
                    t1, t33 = run(model, ids, 1), run(model, ids, 33)
                    res[mode].append((t33 - t1) / 32 * 1e3)
        shortcut.has_cpu_kernel = real
        print(path.split('/')[-1], "batch", batch, {k: " ".join(f"{v:.1f}" for v in vs) for k, vs in res.items()}, flush=True)
