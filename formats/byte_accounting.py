"""Bytes of an artifact's ``model.safetensors`` by category, read from the file header alone.

Categories: ``block_linears`` (every linear inside a decoder layer: packed INT4 codes, scales,
zero points, float weights, biases), ``shortcuts`` (SliceGPT residual shortcut matrices),
``head`` (LM head), ``embeddings`` (token / position embeddings), ``norms_other`` (the rest).
Invariant: the categories sum to the tensor data bytes, and data bytes + 8 + header length ==
the file size (safetensors layout), so the accounting is exact.

Reference sizes for the ratios: ``dense_fp16`` = 2 bytes per dense parameter (tied weights once);
``dense_w4a16`` = the dense model's block linears at 4 bits plus one fp16 scale per 128 weights,
everything else at 2 bytes (the usual W4A16 checkpoint).
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from andactl.errors import ArtifactError

CATEGORIES = ("block_linears", "shortcuts", "head", "embeddings", "norms_other")
W4A16_GROUP = 128
_LAYER = re.compile(r"(^|\.)(layers|h|blocks)\.\d+\.")
_EMBED = ("embed_tokens", "embed_positions", "wte", "wpe", "word_embeddings", "embed_in")
_HEAD = ("lm_head", "embed_out")
_LINEAR_LEAVES = ("weight", "bias", "weight_packed", "weight_scale", "weight_zero_point")


def read_header(file: Path) -> tuple[int, dict]:
    """(header length in bytes, header dict without ``__metadata__``) of a safetensors file."""
    try:
        with open(file, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{file}: not a readable safetensors file ({err})") from err
    header.pop("__metadata__", None)
    return n, header


def category(name: str) -> str:
    """The byte category of a state-dict tensor name."""
    module, _, leaf = name.rpartition(".")
    parts = module.split(".")
    if "_shortcut" in leaf or leaf.startswith("shortcut"):  # float or INT8 (codes + scale)
        return "shortcuts"
    if any(p in _HEAD for p in parts):
        return "head"
    if any(p in _EMBED for p in parts):
        return "embeddings"
    if _LAYER.search(name) and leaf in _LINEAR_LEAVES and not any("norm" in p or p.startswith("ln") for p in parts):
        return "block_linears"
    return "norms_other"


def weights_file(path: str | Path) -> Path:
    """``path``/model.safetensors, or ``path`` itself when it is the file."""
    path = Path(path)
    return path / "model.safetensors" if path.is_dir() else path


def account(path: str | Path, read: tuple[int, dict] | None = None) -> dict:
    """Bytes by category, data/header/file bytes, of ``path``/model.safetensors (or that file);
    ``read``: its ``read_header`` result when the caller has it already."""
    file = weights_file(path)
    n, header = read or read_header(file)
    by_cat = dict.fromkeys(CATEGORIES, 0)
    for name, info in header.items():
        start, end = info["data_offsets"]
        by_cat[category(name)] += int(end) - int(start)
    data = sum(by_cat.values())
    return {"by_category": by_cat, "data_bytes": data, "header_bytes": 8 + n, "file_bytes": file.stat().st_size}


def module_bytes(header: dict) -> dict[str, int]:
    """Bytes of each module's own tensors (name up to the last dot) in a safetensors ``header``
    (``read_header``'s). Invariant: from the header alone, so a module's bytes are what the file
    stores for it (packed codes, scales, zero points, bias), not what it takes once loaded."""
    out: dict[str, int] = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        module = name.rpartition(".")[0]
        out[module] = out.get(module, 0) + int(end) - int(start)
    return out


def dense_references(dense_parameters: int, dense_block_linear_parameters: int | None) -> dict:
    """Bytes of the dense model at FP16 and as a W4A16 checkpoint (module docstring)."""
    refs = {"dense_fp16": 2 * int(dense_parameters)}
    if dense_block_linear_parameters:
        lin = int(dense_block_linear_parameters)
        refs["dense_w4a16"] = lin // 2 + 2 * (-(-lin // W4A16_GROUP)) + 2 * (int(dense_parameters) - lin)
    return refs


def block_linear_parameters(adapter) -> int:
    """Weights of every linear in the decoder layers (what W4A16 quantizes)."""
    total = 0
    for layer in adapter.layers():
        mods = [*adapter.attn_inputs(layer), adapter.attn_output(layer), *adapter.mlp_inputs(layer), adapter.mlp_output(layer)]
        total += sum(int(m.in_features) * int(m.out_features) if hasattr(m, "in_features") else int(m.weight.numel())
                     for m in mods)
    return total
