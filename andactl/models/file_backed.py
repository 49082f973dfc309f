"""Tensors that still live in a memory-mapped weights file, and taking them out of it.

transformers maps a ``.safetensors`` file and the loaded model's tensors point into it. When a pass
replaces most of them by new tensors (``slice`` cuts every decoder weight), one survivor (a sliced
tied model's token table) keeps the whole mapping alive, and with it the pages of every replaced
tensor: 0.53 GB of SmolLM2's float32 file stayed resident for the rest of an `andactl run` chain
(stop 63). Copying the survivors out lets the mapping go. Linux only (``/proc/self/maps``); elsewhere
nothing is found and nothing copied.
"""
from __future__ import annotations

from collections import Counter

import torch


def weight_file_ranges() -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of ``.safetensors`` files ([] where /proc is absent)."""
    ranges = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split()
                if len(fields) > 5 and fields[5].endswith(".safetensors"):
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    ranges.append((start, end))
    except OSError:
        return []
    return ranges


@torch.no_grad()
def own_file_backed(model: torch.nn.Module) -> int:
    """Replaces every CPU parameter and buffer of ``model`` whose storage lies in a mapped weights
    file by a copy of its own (same values, dtype, shape, requires_grad); returns the bytes copied.
    A storage that two of them share is left as it is: copying each would untie them."""
    ranges = weight_file_ranges()
    if not ranges:
        return 0
    tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.device.type == "cpu"]
    owners = Counter(t.untyped_storage().data_ptr() for t in tensors)
    copied = 0
    for tensor in tensors:
        address = tensor.untyped_storage().data_ptr()
        if owners[address] == 1 and any(start <= address < end for start, end in ranges):
            tensor.data = tensor.data.clone()
            copied += tensor.numel() * tensor.element_size()
    return copied
