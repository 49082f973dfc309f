"""Where a streamed run keeps the INT4 weights between ``quantize_weights`` and ``pack``: on disk.

``quantize_weights`` leaves one ``formats.int4.Int4Weight`` per linear in ``ctx.int4_weights``
until ``pack`` consumes them. In memory that is a dict holding ~1 byte per weight (uint8 codes):
0.9 GB for a 1B model, 6.5 GB for 7B — more than the whole streamed working set. A streamed run
gives the pass ``SpilledInt4Weights`` instead: the same mapping interface, each entry a
safetensors file ``int4-<k>.safetensors`` in the run's spill directory, read back when looked up
(``pack`` pops one linear at a time). Only names and paths stay in RAM.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Iterator

from andactl.formats.int4 import Int4Weight


class SpilledInt4Weights(MutableMapping):
    """``name -> Int4Weight`` backed by one file per entry under ``directory``.

    Invariant: ``self[name]`` equals (tensor for tensor, bit for bit) the weight last stored under
    ``name``; deleting or popping an entry removes its file."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._paths: dict[str, Path] = {}
        self._next = 0

    def __setitem__(self, name: str, q: Int4Weight) -> None:
        from andactl.formats.safetensors_stream import save_streaming

        path = self._paths.get(name)
        if path is None:
            path = self.directory / f"int4-{self._next}.safetensors"
            self._next += 1
        tensors = {"codes": q.codes.detach().cpu().contiguous(), "scales": q.scales.detach().cpu().contiguous()}
        if q.zeros is not None:
            tensors["zeros"] = q.zeros.detach().cpu().contiguous()
        tmp = path.with_suffix(".tmp")
        save_streaming(tensors, tmp, metadata={"group_size": str(q.group_size), "in_features": str(q.in_features)})
        os.replace(tmp, path)
        self._paths[name] = path

    def __getitem__(self, name: str) -> Int4Weight:
        from safetensors import safe_open

        path = self._paths[name]
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            t = {k: f.get_tensor(k) for k in f.keys()}
        return Int4Weight(t["codes"], t["scales"], t.get("zeros"), int(meta["group_size"]), int(meta["in_features"]))

    def __delitem__(self, name: str) -> None:
        path = self._paths.pop(name)
        path.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._paths))

    def __len__(self) -> int:
        return len(self._paths)
