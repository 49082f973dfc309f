"""Sliced OPT bf16, 1 thread, batch 1: profile 16 decode steps with the shortcut op vs torch; self CPU time of the top ops."""
import sys, torch
import andactl
from andactl.kernels import shortcut
torch.set_num_threads(1)
real = shortcut.has_cpu_kernel
model = andactl.load(sys.argv[1], dtype=torch.bfloat16)[0]
model.generation_config.pad_token_id = 0
ids = torch.randint(4, 1000, (1, 128), generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    for mode in ("op", "torch", "op", "torch"):
        shortcut.has_cpu_kernel = real if mode == "op" else (lambda: False)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, min_new_tokens=4, do_sample=False, return_dict_in_generate=True)
        with torch.profiler.profile() as prof:
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=17, min_new_tokens=17, do_sample=False)
        ka = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
        print(mode, " | ".join(f"{e.key} {e.count} {e.self_cpu_time_total/1e3:.1f}ms" for e in ka), flush=True)
