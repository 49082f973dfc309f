import torch, time
from andactl.models.loading import load_model
from andactl.kernels.backend import set_model_backend
from andactl.models.anda_linear import AndaLinear
torch.set_num_threads(2)
m = load_model("/work/runs/hl/q1", "bfloat16", "cpu").model.eval(); set_model_backend(m, "auto", "cpu")
for sib in (True,):
  mods = [mod for mod in m.modules() if isinstance(mod, AndaLinear)]
  for mod in mods: mod.siblings = None
  print(len(mods))
  xs = {mod.in_features: torch.randn(8, mod.in_features).bfloat16() for mod in mods}
  with torch.inference_mode():
    for _ in range(3):
        for mod in mods: mod(xs[mod.in_features])
    t = time.perf_counter()
    for _ in range(10):
        for mod in mods: mod(xs[mod.in_features])
    cold = (time.perf_counter() - t) / 10
    hot = 0
    for mod in mods[:7]:
        for _ in range(3): mod(xs[mod.in_features])
        t = time.perf_counter()
        for _ in range(50): mod(xs[mod.in_features])
        hot += (time.perf_counter() - t) / 50
    print(f"all {len(mods)} linears cycling: {cold*1e3:.2f} ms; one layer's 7 hot x30: {hot*30*1e3:.2f} ms")
  with torch.inference_mode():
    for mod in mods[:7]:
        x = xs[mod.in_features]
        for T in (1, 8):
            x = torch.randn(T, mod.in_features).bfloat16()
            for _ in range(3): mod(x)
            t = time.perf_counter()
            for _ in range(200): mod(x)
            dt = (time.perf_counter() - t) / 200
            t = time.perf_counter()
            ops = mod._fused_cache
            for _ in range(200): torch.ops.andactl.anda_linear(x, mod._mantissa_bits, mod.rounding, *ops, mod.bias, mod.group_size, mod.out_features)
            dt2 = (time.perf_counter() - t) / 200
            print(mod.in_features, mod.out_features, T, f"{dt*1e6:.1f} us module, {dt2*1e6:.1f} us op")
