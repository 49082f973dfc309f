"""Model statistics: true parameter counts (shortcut matrices and packed weights included)."""
from __future__ import annotations

import torch

NIBBLE_BUFFERS = ("weight_packed",)  # uint8 tensors holding two INT4 weights per byte


def count_parameters(model: torch.nn.Module) -> int:
    """Number of stored weights: parameters plus persistent floating/packed buffers (shortcut
    matrices, packed INT4 weights count two per byte, their scales), shared tensors once."""
    seen: set[tuple] = set()
    total = 0
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        leaf = name.rsplit(".", 1)[-1]
        if leaf in NIBBLE_BUFFERS:
            total += 2 * t.numel()
        elif t.is_floating_point() or leaf.endswith("shortcut"):
            total += t.numel()
    return total


def count_bytes(model: torch.nn.Module) -> int:
    """Bytes of the state dict as stored (shared tensors once)."""
    seen: set[tuple] = set()
    total = 0
    for t in model.state_dict().values():
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
