"""Rendering of the quantization part of ``andactl inspect``."""
from __future__ import annotations


def quantized_modules(model) -> list[dict]:
    """Per AndaLinear: name, shapes, weight bits, Anda M and stored bytes (weights+scales+zeros+bias)."""
    from andactl.models.anda_linear import AndaLinear

    rows = []
    for name, m in model.named_modules():
        if isinstance(m, AndaLinear):
            stored = sum(t.numel() * t.element_size() for t in (m.weight_packed, m.weight_scale, m.weight_zero_point, m.bias) if t is not None)
            rows.append({"module": name, "in": m.in_features, "out": m.out_features, "weight_bits": 4,
                         "group_size": m.group_size, "mantissa_bits": m.mantissa_bits, "bytes": stored})
    return rows


def print_quantization(console, info: dict) -> None:
    from rich.table import Table

    rows = info.get("quantized_modules", [])
    if rows:
        t = Table(title="quantized modules")
        for col in ("module", "in", "out", "W bits", "group", "Anda M", "bytes"):
            t.add_column(col, justify="right" if col != "module" else "left")
        for r in rows:
            t.add_row(r["module"], str(r["in"]), str(r["out"]), str(r["weight_bits"]), str(r["group_size"]),
                      str(r["mantissa_bits"]), f"{r['bytes']:,}")
        console.print(t)
    console.print(f"stored {info.get('stored_bytes', info['bytes']) / 2**20:.2f} MiB vs dense FP16 {info['dense_fp16_bytes'] / 2**20:.2f} MiB: "
                  f"compression {info['compression_vs_fp16']:.2f}x")
    s = info.get("search")
    if s:
        red = s.get("reduction_vs_fp16") or {}
        console.print(f"Anda bits {s.get('bits')} ({'searched, ' + s['budget'] + ' budget, tolerance ' + str(s['tolerance']) if 'budget' in s else 'fixed'}); "
                      + ", ".join(f"{k} {v:.2f}x" for k, v in red.items()) + (" reduction vs FP16 activations" if red else ""))
