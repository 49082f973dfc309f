import torch, os
from andactl.formats import table_quant as tq
from andactl.kernels import tables, build
print(build.load().ok, build.load().reason)
gen = torch.Generator().manual_seed(0)
for rows, k, g in ((49152, 576, 64), (70, 576, 128), (33, 64, 32)):
    w = torch.randn(rows, k, generator=gen) * 0.05
    packed, scale = tq.quantize(w, 8, g)
    wd = tq.dequantize(packed, scale, 8, k, g)
    for t in (1, 2, 5, 8, 9):
        x = torch.randn(t, k, generator=gen).bfloat16()
        b = torch.randn(rows, generator=gen)
        ref = torch.nn.functional.linear(x.float(), wd, b)
        got = tables.table_linear(x, packed, scale, 8, g, b).float()
        os.environ["ANDA_CPU_ISA"] = "avx512"
        reg = tables.table_linear(x, packed, scale, 8, g, b).float()
        del os.environ["ANDA_CPU_ISA"]
        print(rows, k, g, t, float((got - ref).abs().max()), float((reg - ref).abs().max()), float(ref.abs().max()))
