"""A streaming safetensors writer: one tensor in flight, never a serialised copy of the model.

``safetensors.torch.save_file`` turns every tensor into a ``bytes`` object before writing, so saving
a model briefly holds it twice. This writer emits the same file format (8-byte little-endian
header length, JSON header padded with spaces to a multiple of 8, then the raw little-endian
tensor bytes back to back) writing each tensor straight from its storage.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Callable

import torch

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
}


def save_streaming(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None,
                   fetch: Callable[[str, torch.Tensor], torch.Tensor] | None = None) -> None:
    """Writes ``tensors`` to ``path`` as a safetensors file that ``safetensors.safe_open`` and
    ``load_file`` read back bit-exactly. Peak extra memory: one contiguous CPU copy of the largest
    tensor that is not already contiguous on the CPU. A ``meta`` tensor (shape and dtype only, for
    the header) is replaced when its bytes are written by ``fetch(name, meta_tensor)``, which must
    return a tensor of that shape and dtype (a streamed run's layer store reads it then)."""
    if sys.byteorder != "little":  # pragma: no cover - safetensors is little-endian by definition
        raise RuntimeError("the streaming safetensors writer needs a little-endian machine")
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in DTYPES:
            raise TypeError(f"safetensors cannot store tensor '{name}' of dtype {t.dtype}")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for name, t in tensors.items():
            if t.device.type == "meta" and t.numel():
                if fetch is None:
                    raise ValueError(f"tensor '{name}' is on the meta device and no fetch was given")
                real = fetch(name, t)
                if tuple(real.shape) != tuple(t.shape) or real.dtype != t.dtype:
                    raise ValueError(f"tensor '{name}': fetched {real.dtype}{tuple(real.shape)}, header says "
                                     f"{t.dtype}{tuple(t.shape)}")
                t = real
            if t.numel():
                flat = t.detach().to("cpu").contiguous().reshape(-1)
                fh.write(memoryview(flat.view(torch.uint8).numpy()))
