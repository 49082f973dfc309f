"""``andactl inspect``: what a model or artifact is made of."""
from __future__ import annotations

import click

from andactl.cli.common import emit, format_option
from andactl.consoles import stdout_console


def describe(loaded) -> dict:
    """Summary of a loaded model: architecture, per-layer dims, true parameter count and bytes."""
    from andactl.formats.artifact import model_dtype
    from andactl.models.stats import count_bytes, count_parameters, layer_dims
    from andactl.models.tied_head import is_tied_head

    cfg = loaded.model.config
    meta = loaded.meta
    params = count_parameters(loaded.model)
    dense = meta.get("dense_parameters", params)
    info = {
        "model": loaded.source, "kind": loaded.kind, "model_type": cfg.model_type,
        "layers": cfg.num_hidden_layers, "hidden_size": cfg.hidden_size,
        "parameters": params, "dense_parameters": dense,
        "parameter_ratio": round(params / dense, 4) if dense else None,
        "bytes": count_bytes(loaded.model),  # as loaded (``loaded_dtype``), not as stored
        "loaded_dtype": str(model_dtype(loaded.model)).removeprefix("torch."),
        "provides": sorted(loaded.provided),
        "structure": [r.get("pass") for r in loaded.structure],
        # every pass of every step that made the artifact (recover and the quantization passes
        # leave no structural record), else the structural records
        "passes_applied": [p for step in meta.get("provenance", {}).get("steps", []) for p in step.get("passes", [])]
        or [r.get("pass") for r in loaded.structure],
        "layer_dims": layer_dims(loaded.adapter),
        # a sliced tied source: head and token embedding are one table (andactl/models/tied_head.py)
        "one_table": is_tied_head(loaded.adapter.head()),
    }
    for key in ("slicing", "quantization", "search", "provenance", "base_model"):
        if key in meta:
            info[key] = meta[key]
    header: dict = {}  # the artifact file's safetensors header, read once
    if loaded.kind == "artifact":  # what the file holds; other sources are described as loaded only
        from andactl.formats.byte_accounting import read_header, weights_file

        read = read_header(weights_file(loaded.source))
        header = read[1]
        info["storage"] = storage_summary(loaded.source, meta, read)
        info["stored_bytes"] = info["storage"]["file_bytes"]
    if "quantization" in meta:
        from andactl.cli.quant_view import quantized_modules
        from andactl.formats.byte_accounting import module_bytes

        info["quantized_modules"] = quantized_modules(loaded.model, module_bytes(header))
        info["dense_fp16_bytes"] = 2 * dense
        if "stored_bytes" in info:
            info["compression_vs_fp16"] = round(2 * dense / info["stored_bytes"], 3)
    return info


def storage_summary(path: str, meta: dict, read: tuple[int, dict] | None = None) -> dict:
    """Bytes of model.safetensors by category and the ratios to the dense FP16 / W4A16 model
    (``read``: the file's ``read_header`` result, when the caller has it)."""
    from pathlib import Path

    from andactl.formats.byte_accounting import account, dense_references

    acc = account(Path(path), read)
    refs = dense_references(meta["dense_parameters"], meta.get("dense_block_linear_parameters")) if "dense_parameters" in meta else {}
    out = {**acc, "storage_dtype": meta.get("storage_dtype", "fp32"), "references": refs}
    out["ratios"] = {f"vs_{k}": round(acc["file_bytes"] / v, 4) for k, v in refs.items()}
    return out


def _print_storage(c, st: dict) -> None:
    from rich.table import Table

    t = Table(title=f"model.safetensors bytes (storage dtype {st['storage_dtype']})")
    t.add_column("category")
    t.add_column("bytes", justify="right")
    t.add_column("MiB", justify="right")
    for k, v in [*st["by_category"].items(), ("header", st["header_bytes"]), ("total (file)", st["file_bytes"])]:
        t.add_row(k, f"{v:,}", f"{v / 2**20:.2f}")
    c.print(t)
    for k, v in st["references"].items():
        c.print(f"{k.replace('_', ' ')} reference {v / 2**20:.2f} MiB: this artifact is {st['ratios']['vs_' + k]:.3f}x")


def human(info: dict) -> None:
    from rich.table import Table

    c = stdout_console()
    c.print(f"[bold]{info['model']}[/bold] ({info['kind']}, {info['model_type']}, {info['layers']} layers, hidden {info['hidden_size']})")
    where = (f"stored {info['stored_bytes'] / 2**20:.1f} MiB in model.safetensors, {info['bytes'] / 2**20:.1f} MiB loaded"
             if "stored_bytes" in info else f"{info['bytes'] / 2**20:.1f} MiB loaded")
    c.print(f"parameters: {info['parameters']:,} (dense {info['dense_parameters']:,}, ratio {info['parameter_ratio']}); "
            f"{where} (as {info['loaded_dtype']})")
    if info["passes_applied"]:
        c.print("passes applied: " + ", ".join(info["passes_applied"]))
    if info.get("one_table"):
        emb = info["layer_dims"][0]["attn_in"] if info["layer_dims"] else info["hidden_size"]
        c.print(f"head and token embedding: one table (hidden {info['hidden_size']}; the embedding reads its first "
                f"{emb} columns, the head reads it behind a map), stored under the head")
    dims = info["layer_dims"]
    if dims:
        t = Table(title="per-layer widths")
        for col in ("layer", "attn_in", "mlp_in", "out", "mlp_hidden"):
            t.add_column(col, justify="right")
        for row in dims:
            t.add_row(*(str(row[k]) for k in ("layer", "attn_in", "mlp_in", "out", "mlp_hidden")))
        c.print(t)
    if "storage" in info:
        _print_storage(c, info["storage"])
    if "quantization" in info:
        from andactl.cli.quant_view import print_quantization  # provided with the quantize command

        print_quantization(c, info)


@click.command("inspect")
@click.argument("model")
@format_option
def inspect(model, fmt):
    """Show architecture, per-layer dims, true parameter counts and applied passes of MODEL."""
    from andactl.models.loading import load_model

    emit(describe(load_model(model)), fmt, human)


COMMANDS = [inspect]
