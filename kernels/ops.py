"""The ``torch.ops.andactl`` ops: schemas, pure-torch reference kernels, fake kernels, wrappers.

Schemas (ops_spec.md) are defined here ONCE with ``torch.library.Library("andactl", "DEF")``. The
pure-torch reference is registered for ``CompositeExplicitAutograd`` (used for every backend
that has no kernel of its own), so a C++/CUDA extension loaded before or after this module can
add ``TORCH_LIBRARY_IMPL(andactl, CPU, m)`` / ``(andactl, CUDA, m)`` kernels, which the dispatcher
then prefers. Importing this module registers the ops; importing it again is harmless.

Use the Python wrappers ``anda_pack``, ``anda_unpack`` and ``anda_gemm``: they validate every
argument with a one-line AndaError before calling ``torch.ops.andactl.*``.
"""
from __future__ import annotations

import torch

from andactl.errors import ConfigError
from andactl.formats import anda
from andactl.formats.int4_layout import (  # re-exported: helpers of the INT4 weight layout
    check_int4,
    dequantize_int4,
    pack_int4,
    padded_k,
    unpack_int4,
)
from andactl.kernels.reference import anda_gemm_reference

NAMESPACE = "andactl"
SCHEMAS = {
    "anda_pack": 'anda_pack(Tensor x, int mantissa_bits, str rounding="truncate") -> (Tensor words, Tensor exponents)',
    "anda_unpack": "anda_unpack(Tensor words, Tensor exponents, int mantissa_bits, int k) -> Tensor",
    "anda_gemm": ("anda_gemm(Tensor words, Tensor exponents, int mantissa_bits, int k, Tensor w_packed, "
                  "Tensor w_scales, Tensor? w_zeros, int group_size) -> Tensor"),
}
_ACT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _pack_ref(x: torch.Tensor, mantissa_bits: int, rounding: str = "truncate") -> tuple[torch.Tensor, torch.Tensor]:
    return anda.pack_planes(x, mantissa_bits, rounding)


def _unpack_ref(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int) -> torch.Tensor:
    return anda.unpack_planes(words, exponents, mantissa_bits, k)


def _pack_fake(x: torch.Tensor, mantissa_bits: int, rounding: str = "truncate") -> tuple[torch.Tensor, torch.Tensor]:
    g = (x.shape[-1] + anda.GROUP_SIZE - 1) // anda.GROUP_SIZE
    words = x.new_empty((*x.shape[:-1], g, 1 + mantissa_bits), dtype=torch.int64)
    return words, x.new_empty((*x.shape[:-1], g), dtype=torch.uint8)


def _unpack_fake(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int) -> torch.Tensor:
    return words.new_empty((*exponents.shape[:-1], k), dtype=torch.float32)


def _gemm_fake(words, exponents, mantissa_bits, k, w_packed, w_scales, w_zeros, group_size):
    return words.new_empty((*exponents.shape[:-1], w_packed.shape[0]), dtype=torch.float32)


def _op_defined(name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"{NAMESPACE}::{name}", "")
    except RuntimeError:
        return False
    return True


_CPU_KERNELS: set[str] = set()  # registry of ops found with a CPU kernel (the extension's stay loaded)


def has_cpu_kernel(name: str) -> bool:
    """True when a CPU kernel (the C++ extension's) is registered for ``andactl::<name>``. A kernel,
    once registered, stays for the life of the process, so a found name is remembered: per-call
    checks (attention, head) cost a set lookup instead of a dispatcher query (~16 us)."""
    if name in _CPU_KERNELS:
        return True
    found = torch._C._dispatch_has_kernel_for_dispatch_key(f"{NAMESPACE}::{name}", "CPU")
    if found:
        _CPU_KERNELS.add(name)
    return found


def define_ops(kind: str, schemas: dict[str, str], impls: dict[str, tuple], previous):
    """Define ``schemas`` in the andactl namespace (``kind`` "DEF" or "FRAGMENT") and register each
    op's ``(reference, fake)`` pair from ``impls``; returns the Library to keep alive.

    Invariant: idempotent per process. If the first schema is already defined (an earlier execution
    of the calling file: importlib.reload, or the file imported under a second name), nothing is
    registered again and ``previous`` (that execution's Library) is returned: dropping it would
    deregister the ops."""
    if _op_defined(next(iter(schemas))):
        return previous
    lib = torch.library.Library(NAMESPACE, kind)
    for schema in schemas.values():
        lib.define(schema)
    for name, (ref, fake) in impls.items():
        lib.impl(name, ref, "CompositeExplicitAutograd")
        torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=lib)
    return lib


_LIB = define_ops("DEF", SCHEMAS, {"anda_pack": (_pack_ref, _pack_fake), "anda_unpack": (_unpack_ref, _unpack_fake),
                                    "anda_gemm": (anda_gemm_reference, _gemm_fake)},
                  globals().get("_LIB"))  # kept alive for the life of the process


_check_words = anda.check_words  # one home: formats.anda


def anda_pack(x: torch.Tensor, mantissa_bits: int, rounding: str = "truncate") -> tuple[torch.Tensor, torch.Tensor]:
    """(words int64 [..., G, 1+M], exponents uint8 [..., G]) of x [..., K] (G = ceil(K/64)).

    ConfigError for a bad dtype, M outside 1..16 or an unknown rounding; NumericsError for NaN,
    Inf or |x| > 65504. Dispatches to the registered kernel for x's device (else the reference).
    """
    if not isinstance(x, torch.Tensor) or x.dtype not in _ACT_DTYPES:
        raise ConfigError(f"anda_pack takes float16/bfloat16/float32, got {getattr(x, 'dtype', type(x))}")
    anda.check_mantissa_bits(mantissa_bits)
    anda.check_rounding(rounding)
    anda.check_representable(x)  # NumericsError with a clear message before any kernel runs
    return torch.ops.andactl.anda_pack(x, mantissa_bits, rounding)


def anda_unpack(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int) -> torch.Tensor:
    """float32 [..., k]: exact decode (-1)**s * m * 2**(E-15-(M-1)) of packed activations."""
    _check_words(words, exponents, mantissa_bits, k)
    return torch.ops.andactl.anda_unpack(words, exponents, mantissa_bits, k)


def anda_gemm(words: torch.Tensor, exponents: torch.Tensor, mantissa_bits: int, k: int, w_packed: torch.Tensor,
              w_scales: torch.Tensor, w_zeros: torch.Tensor | None, group_size: int) -> torch.Tensor:
    """float32 [..., N]: Anda activations [..., k] times the INT4 weight [N, k] transposed.

    Equals F.linear(anda_unpack(...), dequantize_int4(...)) up to float32 accumulation order.
    """
    _check_words(words, exponents, mantissa_bits, k)
    check_int4(w_packed, w_scales, w_zeros, group_size, k)
    devices = {t.device for t in (words, exponents, w_packed, w_scales) + ((w_zeros,) if w_zeros is not None else ())}
    if len(devices) != 1:
        raise ConfigError(f"anda_gemm tensors must share one device, got {sorted(map(str, devices))}")
    return torch.ops.andactl.anda_gemm(words, exponents, mantissa_bits, k, w_packed, w_scales, w_zeros, group_size)


__all__ = [
    "NAMESPACE", "SCHEMAS", "anda_pack", "anda_unpack", "anda_gemm", "unpack_int4", "pack_int4",
    "dequantize_int4", "padded_k", "check_int4",
]
