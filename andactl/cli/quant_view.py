"""Rendering of the quantization part of ``andactl inspect``."""
from __future__ import annotations


def quantized_modules(model, file_bytes: dict[str, int]) -> list[dict]:
    """Per AndaLinear: name, shapes, weight bits, Anda M and ``bytes``: what model.safetensors stores
    for it (``file_bytes``, from ``byte_accounting.module_bytes``: codes + scales + zero points + bias;
    loaded, the codes are padded to whole groups and the scales widened, so memory holds more)."""
    from andactl.models.anda_linear import AndaLinear

    return [{"module": name, "in": m.in_features, "out": m.out_features, "weight_bits": 4,
             "group_size": m.group_size, "mantissa_bits": m.mantissa_bits, "bytes": file_bytes.get(name)}
            for name, m in model.named_modules() if isinstance(m, AndaLinear)]


def print_quantization(console, info: dict) -> None:
    from rich.table import Table

    from andactl.consoles import encodable

    rows = info.get("quantized_modules", [])
    if rows:
        t = Table(title="quantized modules")
        for col in ("module", "in", "out", "W bits", "group", "Anda M", "bytes in file"):
            t.add_column(col, justify="right" if col != "module" else "left")
        for r in rows:
            t.add_row(r["module"], str(r["in"]), str(r["out"]), str(r["weight_bits"]), str(r["group_size"]),
                      str(r["mantissa_bits"]), encodable("—", "-") if r["bytes"] is None else f"{r['bytes']:,}")
        console.print(t)
    if "stored_bytes" in info:
        console.print(f"stored {info['stored_bytes'] / 2**20:.2f} MiB vs dense FP16 {info['dense_fp16_bytes'] / 2**20:.2f} MiB: "
                      f"compression {info['compression_vs_fp16']:.2f}x")
    s = info.get("search")
    if s:
        red = s.get("reduction_vs_fp16") or {}
        how = f"searched, {s['budget']} budget, tolerance {s['tolerance']}" if "budget" in s else "fixed"
        console.print(f"Anda bits {s.get('bits')} ({how})"
                      + ("; " + ", ".join(f"{k} {v:.2f}x" for k, v in red.items()) + " reduction vs FP16 activations" if red else ""))
