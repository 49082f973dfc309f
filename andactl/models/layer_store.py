"""Where decoder layers live during a run: all in memory, or one at a time (layer-wise streaming).

Passes that walk decoder layers do it through a store::

    for i in range(store.num_layers):
        with store.onload(i) as layer:
            ...  # edit ``layer`` in place (weights, structure)

``ResidentStore`` is today's behaviour: every layer is always materialised and ``onload`` just
yields it. ``StreamedStore`` keeps every decoder layer on the ``meta`` device (shapes and dtypes,
no storage); ``onload(i)`` materialises layer ``i`` from its latest version (the source's
safetensors, read tensor by tensor with ``safe_open``, or the spill file the last pass wrote), and
on a normal exit writes the edited layer to ``spill_dir/layer-<i>.safetensors`` and puts it back on
``meta``. Embeddings, final norm and head stay resident. So at most one layer is ever in memory.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from andactl.errors import ModelError
from andactl.formats.storage import finite_absmax


def absmax_if_finite(t: torch.Tensor) -> float | None:
    """``max |t|`` when every value is finite, else None (one min/max sweep, no copies)."""
    if not t.numel():
        return 0.0
    lo, hi = torch.aminmax(t.detach().reshape(-1))
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN propagates, Inf is an extreme
        return None
    return max(-lo, hi)


class ResidentStore:
    """Every layer in memory (the default). Invariant: ``onload(i)`` yields ``layers[i]`` itself."""

    streamed = False

    def __init__(self, adapter):
        self.adapter = adapter

    @property
    def num_layers(self) -> int:
        return len(self.adapter.layers())

    @contextlib.contextmanager
    def onload(self, i: int) -> Iterator[nn.Module]:
        yield self.adapter.layers()[i]

    def tensor(self, name: str) -> torch.Tensor:  # pragma: no cover - resident tensors are never meta
        raise KeyError(name)

    def int4_weights(self) -> dict:
        """Where ``quantize_weights`` keeps its INT4 weights until ``pack``: a plain dict."""
        return {}


def _layer_prefix(model: nn.Module, adapter, i: int) -> str:
    layer = adapter.layers()[i]
    for name, mod in model.named_modules():
        if mod is layer:
            return name + "."
    raise ModelError(f"decoder layer {i} is not a submodule of the model")


def source_index(folder: Path) -> dict[str, Path]:
    """Tensor name -> safetensors file of an HF folder (single file or sharded with an index)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: folder / fname for name, fname in weight_map.items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        raise ModelError(f"{folder}: layer-wise streaming needs safetensors weights (model.safetensors)")
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as fh:
        return {name: single for name in fh.keys()}


def read_tensors(index: dict[str, Path], names: list[str]) -> dict[str, torch.Tensor]:
    """The named tensors, each read on its own from its (memory-mapped) safetensors file."""
    from safetensors import safe_open

    by_file: dict[Path, list[str]] = {}
    for n in names:
        if n not in index:
            raise ModelError(f"tensor '{n}' is missing from the model's safetensors files")
        by_file.setdefault(index[n], []).append(n)
    out = {}
    for path, keys in by_file.items():
        with safe_open(str(path), framework="pt") as fh:
            for k in keys:
                out[k] = fh.get_tensor(k)
    return out


class StreamedStore:
    """Decoder layers on ``meta``; one materialised at a time (see the module docstring).

    Invariants: outside ``onload`` every layer tensor is on ``meta`` and the layer's latest values
    are in its spill file (or, never edited, in the source); ``absmax[name]`` is the largest finite
    magnitude of every spilled float tensor (the artifact writer's storage-dtype decision needs it
    before the header is written); the result of any sequence of passes equals the resident run's.
    """

    streamed = True

    def __init__(self, model: nn.Module, adapter, source: dict[str, Path], spill_dir: Path, dtype: torch.dtype,
                 device: torch.device, source_name: str = "model"):
        self.model, self.adapter, self.source = model, adapter, source
        self.spill_dir, self.dtype, self.device = Path(spill_dir), dtype, device
        self.source_name = source_name
        self.spilled: set[int] = set()
        self.absmax: dict[str, float] = {}
        self.prefixes = [_layer_prefix(model, adapter, i) for i in range(len(adapter.layers()))]
        self._cached: tuple[int, dict[str, torch.Tensor]] | None = None
        self.bytes_read = 0

    @property
    def num_layers(self) -> int:
        return len(self.prefixes)

    def spill_path(self, i: int) -> Path:
        return self.spill_dir / f"layer-{i}.safetensors"

    def _load(self, i: int) -> dict[str, torch.Tensor]:
        """Layer ``i``'s state dict (keys relative to the layer) from its spill file or the source."""
        from safetensors.torch import load_file

        if i in self.spilled:
            return load_file(str(self.spill_path(i)))
        layer = self.adapter.layers()[i]
        prefix = self.prefixes[i]
        names = [prefix + k for k in layer.state_dict()]
        raw = read_tensors(self.source, names)
        out = {}
        for name, t in raw.items():
            if t.is_floating_point():
                if absmax_if_finite(t) is None:
                    raise ModelError(f"{self.source_name}: tensor '{name}' contains NaN or Inf; the model file is "
                                     "corrupt (re-create it from its source)")
                t = t.to(self.dtype)
            out[name[len(prefix):]] = t
        return out

    def materialise(self, i: int) -> nn.Module:
        """Puts layer ``i``'s latest tensors into the module (on the run device); returns it."""
        layer = self.adapter.layers()[i]
        state = self._load(i)
        self.bytes_read += sum(t.numel() * t.element_size() for t in state.values())
        state = {k: v.to(self.device) for k, v in state.items()}
        layer.load_state_dict(state, strict=True, assign=True)
        return layer

    def spill(self, i: int) -> None:
        """Writes layer ``i`` to its spill file and puts it back on ``meta``."""
        from andactl.formats.safetensors_stream import save_streaming

        layer = self.adapter.layers()[i]
        state = {k: v.detach().cpu() for k, v in layer.state_dict().items()}
        for k, v in state.items():
            if v.is_floating_point():
                self.absmax[self.prefixes[i] + k] = finite_absmax(v)
        tmp = self.spill_path(i).with_suffix(".tmp")
        save_streaming(state, tmp)
        os.replace(tmp, self.spill_path(i))
        self.spilled.add(i)
        del state
        layer.to("meta")
        if self._cached is not None and self._cached[0] == i:
            self._cached = None

    @contextlib.contextmanager
    def onload(self, i: int) -> Iterator[nn.Module]:
        layer = self.materialise(i)
        try:
            yield layer
        except BaseException:
            layer.to("meta")  # the run fails: nothing is written back
            raise
        self.spill(i)

    def int4_weights(self):
        """Where ``quantize_weights`` keeps its INT4 weights until ``pack``: files in the spill
        directory (``andactl.models.int4_spill``), so they do not grow with the model in RAM."""
        from andactl.models.int4_spill import SpilledInt4Weights

        return SpilledInt4Weights(self.spill_dir / "int4")

    def layer_of(self, name: str) -> int | None:
        for i, p in enumerate(self.prefixes):
            if name.startswith(p):
                return i
        return None

    def tensor(self, name: str) -> torch.Tensor:
        """The latest value of a layer tensor by its model state-dict name (the artifact writer's
        fetch); one layer's tensors are cached, so walking names in layer order reads each once."""
        i = self.layer_of(name)
        if i is None:
            raise KeyError(name)
        if self._cached is None or self._cached[0] != i:
            self._cached = None
            self._cached = (i, self._load(i))
        return self._cached[1][name[len(self.prefixes[i]):]]

    def release(self) -> None:
        self._cached = None


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_BYTES = 1 << 20  # allocations from 1 MiB up go straight to mmap and back to the OS when freed


def _glibc(call: str, *args) -> None:
    """``call(*args)`` in the C library; a no-op where glibc (or the function) is not there."""
    import ctypes
    import ctypes.util

    try:
        getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), call)(*args)
    except (OSError, AttributeError):
        pass


def return_freed_memory() -> None:
    """Makes freed tensor memory go back to the OS (glibc): a fixed mmap threshold, so glibc's
    dynamic threshold never moves layer-sized buffers onto the heap, where freeing one layer's
    tensors and reading the next fragments it and RSS creeps up by a fraction of a layer per layer.
    A no-op where glibc is not the allocator."""
    _glibc("mallopt", M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def trim_heap() -> None:
    """Gives the heap's free pages back to the OS now (glibc ``malloc_trim``): tensors allocated
    before ``return_freed_memory`` may sit on the heap, and freeing them alone leaves RSS where it
    was. A no-op where glibc is not the allocator."""
    _glibc("malloc_trim", 0)


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside the block get their parameters on ``meta`` (no storage); buffers
    (e.g. rotary ``inv_freq``, computed in ``__init__``) stay real."""
    original = nn.Module.register_parameter

    def register(module, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original
