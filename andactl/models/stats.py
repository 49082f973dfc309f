"""Model statistics: true parameter counts (shortcut matrices and packed weights included)."""
from __future__ import annotations

import torch

QUANT_OVERHEAD = ("weight_scale", "weight_zero_point")  # per-group metadata, not parameters


def count_parameters(model: torch.nn.Module) -> int:
    """Number of logical weights: floating parameters and persistent floating buffers (SliceGPT
    shortcut matrices included), each packed INT4 linear as in_features x out_features (its
    padding, scales and zero points are storage overhead, reported by ``count_bytes``); tensors
    shared between modules (tied weights) count once, on the ``meta`` device too (a model built from
    its config alone for ``--dry-run``, or a streamed layer), where ties are the same tensor object."""
    seen: set[tuple] = set()
    total = 0
    packed = {name: m for name, m in model.named_modules() if hasattr(m, "weight_packed")}
    shared: set[int] = set()
    for name, m in packed.items():
        ptr = id(m.weight_packed) if m.weight_packed.device.type == "meta" else m.weight_packed.data_ptr()
        if ptr in shared:  # a tied quantized head reads the embedding's codes
            continue
        shared.add(ptr)
        total += m.in_features * m.out_features
    for name, t in model.state_dict(keep_vars=True).items():  # the tensors themselves: a tie is one object
        if t.device.type == "meta":  # no storage to compare
            key: tuple = ("meta", id(t))
        else:
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        owner, _, leaf = name.rpartition(".")
        if owner in packed and leaf != "bias":
            continue
        if t.is_floating_point() and leaf not in QUANT_OVERHEAD:
            total += t.numel()
    return total


def count_bytes(model: torch.nn.Module) -> int:
    """Bytes of the state dict as loaded in memory (shared tensors once); an artifact's file may hold fewer."""
    seen: set[tuple] = set()
    total = 0
    for name, t in model.state_dict().items():
        if t.device.type == "meta":  # a streamed layer's tensor: never shared
            key: tuple = ("meta", name)
        else:
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total


def layer_dims(adapter) -> list[dict]:
    """Per layer: widths of the attention input, MLP input and layer output residual streams."""
    rows = []
    for i, layer in enumerate(adapter.layers()):
        q = adapter.attn_inputs(layer)[0]
        up = adapter.mlp_inputs(layer)[0]
        down = adapter.mlp_output(layer)
        rows.append({"layer": i, "attn_in": _in_features(q), "mlp_in": _in_features(up),
                     "out": _out_features(down), "mlp_hidden": _out_features(up)})
    return rows


def _in_features(m) -> int:
    return int(getattr(m, "in_features", m.weight.shape[1] if hasattr(m, "weight") else 0))


def _out_features(m) -> int:
    return int(getattr(m, "out_features", m.weight.shape[0] if hasattr(m, "weight") else 0))
