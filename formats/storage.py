"""Storage dtype of an artifact's non-packed tensors (``--storage-dtype bf16|fp16|fp32``).

Every floating tensor of ``model.safetensors`` (norms, shortcut matrices, unquantized linears,
biases) is written in the storage dtype and copied back into the run dtype when the
artifact is loaded (``load_state_dict`` casts). Integer tensors (packed INT4 weights, zero points,
quantized tables) and quantization scales (``*.weight_scale``: float32 for packed INT4 linears, as
the packed format defines them; fp16 for quantized tables) are never touched. A tensor whose finite values exceed the storage dtype's
range is kept in float32 and named in config.json, so storage never turns a weight into Inf.
"""
from __future__ import annotations

import math

import torch

from andactl.errors import ConfigError

STORAGE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DEFAULT_STORAGE_DTYPE = "fp16"
SCALE_SUFFIX = "weight_scale"  # quantization scales keep the dtype their format defines


def parse_storage_dtype(name: str) -> torch.dtype:
    """The torch dtype of a storage dtype name; ConfigError naming the choices otherwise."""
    if name not in STORAGE_DTYPES:
        raise ConfigError(f"unknown storage dtype {name!r}; choose one of {', '.join(STORAGE_DTYPES)}")
    return STORAGE_DTYPES[name]


def finite_absmax(t: torch.Tensor) -> float:
    """The largest finite magnitude in ``t`` (0 when there is none): one min/max sweep without
    copies when every value is finite (masking a big tensor costs several times its bytes)."""
    if not t.numel():
        return 0.0
    lo, hi = (float(v) for v in torch.aminmax(t.detach().reshape(-1)))
    if math.isfinite(lo) and math.isfinite(hi):
        return max(-lo, hi)
    finite = t[torch.isfinite(t)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def to_storage(tensors: dict[str, torch.Tensor], name: str, absmax: dict[str, float] | None = None,
               convert: bool = True) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(tensors with every floating one cast to the storage dtype ``name``, names kept in float32
    because their values overflow it). Input tensors are not modified. A ``meta`` tensor (a layer
    of a streamed run, not in memory) is decided from ``absmax[key]``, its largest finite
    magnitude, and stays ``meta`` with the chosen dtype. With ``convert=False`` every tensor that
    would be cast comes back as a ``meta`` tensor of the chosen dtype (the plan only: the writer
    casts each one when it writes it, so no second copy of the model is held)."""
    dtype = parse_storage_dtype(name)
    out, kept = {}, []
    limit = torch.finfo(dtype).max
    for key, t in tensors.items():
        if not t.is_floating_point() or t.dtype == dtype or key.endswith((SCALE_SUFFIX, SCALE_SUFFIX_Q)):
            out[key] = t
            continue
        big = (absmax or {}).get(key, 0.0) if t.device.type == "meta" else finite_absmax(t)
        target = torch.float32 if big > limit else dtype
        if big > limit:
            kept.append(key)
        if not convert or t.device.type == "meta":
            out[key] = t if t.dtype == target and t.device.type == "meta" else torch.empty(t.shape, dtype=target, device="meta")
            continue
        out[key] = t.to(target).contiguous()
    return out, kept


# --- SliceGPT shortcut matrices in INT8 (``--shortcuts int8``) -----------------------------------
SHORTCUT_STORAGE = ("float", "int8")
DEFAULT_SHORTCUT_STORAGE = "float"
SHORTCUT_GROUP = 64
CODES_SUFFIX, SCALE_SUFFIX_Q = "_int8", "_int8_scale"


def parse_shortcut_storage(name: str) -> str:
    """``float`` (the storage dtype) or ``int8``; ConfigError naming the choices otherwise."""
    if name not in SHORTCUT_STORAGE:
        raise ConfigError(f"unknown shortcut storage {name!r}; choose float or int8")
    return name


def is_shortcut(name: str) -> bool:
    """True for a SliceGPT residual shortcut buffer (``attn_shortcut``, ``mlp_shortcut``, ``shortcut``)."""
    leaf = name.rpartition(".")[2]
    return leaf == "shortcut" or leaf.endswith("_shortcut")


def shortcuts_to_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each 2-D float shortcut ``S`` [R, C] replaced by ``S_int8`` (uint8 q + 128) and ``S_int8_scale``
    (fp16 [R, ceil(C/64)]): group-wise symmetric INT8 along C (formats/table_quant.py), so
    ``|S - Ŝ| <= scale / 2`` element-wise. Other tensors pass through; inputs are not modified. A
    ``meta`` shortcut (a streamed layer) gets ``meta`` entries of the stored shapes; the writer
    fills them with ``int8_shortcut_part`` of the spilled value."""
    from andactl.formats import table_quant as tq

    out = {}
    for key, t in tensors.items():
        if is_shortcut(key) and t.is_floating_point() and t.dim() == 2:
            if t.device.type == "meta":  # a streamed layer's: shapes now, values when written (int8_shortcut_part)
                for k, (dtype, shape) in int8_shortcut_entries(key, tuple(t.shape)).items():
                    out[k] = torch.empty(shape, dtype=dtype, device="meta")
            else:
                out[key + CODES_SUFFIX], out[key + SCALE_SUFFIX_Q] = tq.quantize(t, 8, SHORTCUT_GROUP)
        else:
            out[key] = t
    return out


def int8_shortcut_base(name: str) -> str | None:
    """The shortcut whose INT8 codes or scale ``name`` is (``shortcuts_to_int8`` naming), else None."""
    for suffix in (SCALE_SUFFIX_Q, CODES_SUFFIX):  # the longer suffix first
        if name.endswith(suffix) and is_shortcut(name[: -len(suffix)]):
            return name[: -len(suffix)]
    return None


def int8_shortcut_part(name: str, shortcut: torch.Tensor) -> torch.Tensor:
    """The INT8 codes or the scale (as ``name`` says) of the float ``shortcut``: exactly the tensor
    ``shortcuts_to_int8`` stores under ``name`` for it."""
    from andactl.formats import table_quant as tq

    codes, scale = tq.quantize(shortcut, 8, SHORTCUT_GROUP)
    return scale if name.endswith(SCALE_SUFFIX_Q) else codes


def int8_shortcut_entries(name: str, shape: tuple[int, ...]) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """The stored (dtype, shape) of an INT8 shortcut ``name`` of in-memory ``shape`` [R, C]."""
    rows, cols = shape
    return {name + CODES_SUFFIX: (torch.uint8, (rows, cols)),
            name + SCALE_SUFFIX_Q: (torch.float16, (rows, -(-cols // SHORTCUT_GROUP)))}


def shortcuts_from_int8(state: dict[str, torch.Tensor], names: list[str], dtype: torch.dtype) -> None:
    """In place: each ``name`` in ``names`` dequantized from its stored codes and scale into ``dtype``."""
    from andactl.formats import table_quant as tq

    for name in names:
        codes = state.pop(name + CODES_SUFFIX)
        scale = state.pop(name + SCALE_SUFFIX_Q)
        state[name] = tq.dequantize(codes, scale, 8, codes.shape[1], SHORTCUT_GROUP, dtype)
