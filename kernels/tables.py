"""The op ``andactl::table_linear``: a linear layer over a group-wise INT8 / INT4 table (the
quantized LM head of formats/table_quant.py), computed from the codes.

    table_linear(x [..., K] f32|bf16|f16, packed uint8 [R, K or ceil(K/2)], scale f16 [R, ceil(K/g)],
                 bits 8|4, group_size g, bias? [R]) -> [..., R] in x.dtype

Invariant: equals ``F.linear(x.float(), dequantize(packed, scale, bits, K, g), bias).to(x.dtype)``
up to float32 summation order (the C++ kernel sums each group, then scales it; relative error
~1e-6 of sum |w x|). The C++ extension registers the CPU kernel, which never builds the float
table: a decode step reads the table's bytes once instead of writing and reading a float32 copy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from andactl.formats import table_quant as tq
from andactl.kernels import build, ops

SCHEMA = "table_linear(Tensor x, Tensor packed, Tensor scale, int bits, int group_size, Tensor? bias) -> Tensor"


def _table_linear_ref(x, packed, scale, bits, group_size, bias):
    w = tq.dequantize(packed, scale, bits, x.shape[-1], group_size)
    b = None if bias is None else bias.float()
    return F.linear(x.float(), w, b).to(x.dtype)


def _table_linear_fake(x, packed, scale, bits, group_size, bias):
    return x.new_empty((*x.shape[:-1], packed.shape[0]))


_LIB = ops.define_ops("FRAGMENT", {"table_linear": SCHEMA}, {"table_linear": (_table_linear_ref, _table_linear_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def has_cpu_kernel() -> bool:
    """True when the C++ extension registered a CPU kernel for ``andactl::table_linear``."""
    return ops.has_cpu_kernel("table_linear")


def table_linear(x: torch.Tensor, packed: torch.Tensor, scale: torch.Tensor, bits: int, group_size: int,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    """The op on x's device: on CPU the C++ kernel (the extension is built / loaded on first use,
    as for the packed linears; if it cannot be, the reference), elsewhere the reference."""
    if x.device.type == "cpu" and not has_cpu_kernel():
        build.load()  # never raises; one warning if the extension cannot be built
    return torch.ops.andactl.table_linear(x, packed, scale, bits, group_size, bias)


__all__ = ["SCHEMA", "has_cpu_kernel", "table_linear"]
