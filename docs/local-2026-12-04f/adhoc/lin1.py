import torch, time
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.anda_linear import AndaLinear
m = load_model("/work/runs/hl/q1", "bfloat16", "cpu").model.eval(); set_model_backend(m, "auto", "cpu")
mods = [mod for mod in m.modules() if isinstance(mod, AndaLinear)]
for mod in mods: mod.siblings = None
with torch.inference_mode():
  for th in (1, 2):
    torch.set_num_threads(th)
    for mod in (mods[1], mods[3], mods[4]):
        for T in (1, 8):
            x = torch.randn(T, mod.in_features).bfloat16()
            mod(x); ops = mod._fused_cache
            f = lambda: torch.ops.andactl.anda_linear(x, mod._mantissa_bits, mod.rounding, *ops, mod.bias, mod.group_size, mod.out_features)
            for _ in range(20): f()
            t = time.perf_counter()
            for _ in range(500): f()
            print(th, mod.in_features, mod.out_features, T, f"{(time.perf_counter() - t) / 500 * 1e6:.1f} us")
    e = torch.empty(1)
    t = time.perf_counter()
    for _ in range(500): torch.ops.aten.empty.memory_format([100])
    print("empty", (time.perf_counter() - t) / 500 * 1e6)
