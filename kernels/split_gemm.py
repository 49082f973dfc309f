"""Float32-grade matrix products on AMX-BF16 tiles, for the frozen LM heads of recovery training.

    split_pack(w [R, C] float32, transposed) -> packed B: w.t() ([C, R]) when transposed, else w
    split_mm(x [M, K] float32, packed, out [M, N] float32, work) -> ():  out = x @ B

Every value v is split into hi = bf16(v) and lo = bf16(v - hi) (round to nearest even; values
below 2^-126 count as zero, as TDPBF16PS treats them), and ``out = x_hi B_hi + x_hi B_lo +
x_lo B_hi`` is summed in float32 by the tiles. Invariant: each product is within about 2^-16 of
|x||B| of the float32 one (the dropped x_lo B_lo and lo's rounding), so |out - x @ B| <=
``ERROR_BOUND`` * (|x| @ |B|) elementwise with the summation's float32 rounding included (tested
up to K = 2100 at every SIMD level; measured 1.5e-7 of |x| @ |B| at K = 49152, the gradient through
a head); the inputs must be finite. ``work`` is a bfloat16 buffer of at least ``work_size(M, K)`` values that split_mm
fills with x's tiles (the caller reuses it across calls). B packed for a 32-column block
and a step of 32 reduction values is 4 tiles of 16 x 32 bf16 (hi of the two 16-column halves,
then lo), each in the VNNI layout TDPBF16PS reads: [i][c][e] = B[32 s + 2 i + e][column c].

The C++ extension (kernels/csrc/split_gemm*.cpp) registers the CPU kernels; on AMX-BF16 CPUs
(``hardware()``) they run on the tiles, otherwise over software tiles (tests of the layout with
ANDA_CPU_ISA=amx-emulated), and callers keep torch's float32 GEMM there. The torch references
below define the layout and the arithmetic.
"""
from __future__ import annotations

import torch

from andactl.kernels import ops

STEP = 32  # reduction values per tile step
BLOCK = 32  # columns of B / rows of x per packed block
STEP_VALUES = 4 * 16 * 32  # bf16 values per block and step (4 tiles)
ERROR_BOUND = 2.0 ** -14  # |out - x @ B| <= ERROR_BOUND * (|x| @ |B|), see the module docstring
MIN_NORMAL = 2.0 ** -126

SCHEMAS = {
    "split_pack": "split_pack(Tensor w, bool transposed) -> Tensor",
    "split_mm": "split_mm(Tensor x, Tensor packed, Tensor(a!) out, Tensor(b!) work) -> ()",
}


def _blocks(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK


def _steps(k: int) -> int:
    return (k + STEP - 1) // STEP


def work_size(rows: int, k: int) -> int:
    """bf16 values of split_mm's ``work`` for ``rows`` rows of x over ``k`` columns."""
    return _blocks(rows) * _steps(k) * STEP_VALUES


def _flush(v: torch.Tensor) -> torch.Tensor:
    """v with values below 2^-126 made zero of their sign."""
    return torch.where(v.float().abs() < MIN_NORMAL, v * 0, v)


def split_parts(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo) bfloat16 of float32 ``v``: hi = bf16(v), lo = bf16(v - hi), nearest even, values
    and results below 2^-126 zero (the AVX-512 BF16 conversions' DAZ / FTZ)."""
    x = _flush(v.float())
    hi = _flush(x.to(torch.bfloat16))
    lo = _flush(_flush(x - hi.float()).to(torch.bfloat16))
    return hi, lo


def split_pack_reference(w: torch.Tensor, transposed: bool) -> torch.Tensor:
    b = w.float().t() if transposed else w.float()
    k, n = b.shape
    s, nb = _steps(k), _blocks(n)
    padded = torch.zeros(s * STEP, nb * BLOCK, dtype=torch.float32)
    padded[:k, :n] = b
    parts = torch.stack(split_parts(padded))  # [part, K, N]
    view = parts.view(2, s, 16, 2, nb, 2, 16)  # part, step, pair i, e, block, tile t, column c
    return view.permute(4, 1, 0, 5, 2, 6, 3).reshape(nb, s, 4, 16, 32).contiguous()


def unpack_reference(packed: torch.Tensor, k: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B_hi, B_lo) as float32 [k, n] from ``packed`` (the inverse of the layout)."""
    nb, s = packed.shape[:2]
    parts = packed.view(nb, s, 2, 2, 16, 16, 2).permute(2, 1, 4, 6, 0, 3, 5).reshape(2, s * STEP, nb * BLOCK)
    return parts[0, :k, :n].float(), parts[1, :k, :n].float()


def split_mm_reference(x, packed, out, work):
    b_hi, b_lo = unpack_reference(packed, x.shape[1], out.shape[1])
    x_hi, x_lo = (p.double() for p in split_parts(x))
    out.copy_(x_hi @ b_hi.double() + x_hi @ b_lo.double() + x_lo @ b_hi.double())


def _pack_fake(w, transposed):
    k, n = (w.shape[1], w.shape[0]) if transposed else tuple(w.shape)
    return w.new_empty((_blocks(n), _steps(k), 4, 16, 32), dtype=torch.bfloat16)


def _mm_fake(x, packed, out, work):
    return None


_LIB = ops.define_ops("FRAGMENT", SCHEMAS, {"split_pack": (split_pack_reference, _pack_fake),
                                           "split_mm": (split_mm_reference, _mm_fake)},
                      globals().get("_LIB"))  # kept alive for the life of the process


def packed_bytes(rows: int, cols: int) -> int:
    """Bytes of split_pack's result for a [rows, cols] matrix, either orientation (both dimensions
    are padded to multiples of 32)."""
    return _blocks(rows) * _steps(cols) * STEP_VALUES * 2


def tiles_expected() -> bool:
    """Whether this CPU has AMX tiles (torch's cpuinfo probe), without building the extension:
    what estimates (``--dry-run``) assume ``hardware()`` will say."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


def hardware() -> bool:
    """True when the C++ kernels are loaded and run on AMX-BF16 tiles here (the extension is built
    or loaded on first call; never raises)."""
    from andactl.kernels import build

    if not ops.has_cpu_kernel("split_mm"):
        build.load()
    if not ops.has_cpu_kernel("split_mm"):
        return False
    return int(torch.ops.andactl_cpp.split_tiles()) == 2


class SplitMatrix:
    """A frozen float32 matrix ``w`` [R, C] packed once for ``x @ w.t()`` (``rows_times``: logits
    through a head) and, packed on first use, for ``g @ w`` (``times``: the gradient through it).
    Invariant: the products are split_mm's (module docstring) of the values ``w`` held when packed."""

    def __init__(self, w: torch.Tensor):
        self._w = w
        self._t = torch.ops.andactl.split_pack(w.float(), True)
        self._n = None

    def rows_times(self, x: torch.Tensor, out: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
        """out [M, R] = x [M, C] @ w.t()."""
        torch.ops.andactl.split_mm(x, self._t, out, work)
        return out

    def times(self, g: torch.Tensor, out: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
        """out [M, C] = g [M, R] @ w."""
        if self._n is None:
            self._n = torch.ops.andactl.split_pack(self._w.float(), False)
        torch.ops.andactl.split_mm(g, self._n, out, work)
        return out


__all__ = ["ERROR_BOUND", "SCHEMAS", "SplitMatrix", "hardware", "packed_bytes", "split_mm_reference",
           "split_pack_reference", "split_parts", "tiles_expected", "unpack_reference", "work_size"]
