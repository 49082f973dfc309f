"""Costs every estimate shares: the interpreter's base, disk and memory throughput, what an
INT4 weight, GPTQ and a vocabulary table cost, and the small helpers that turn them into a report's
figures (docs/MEMORY.md). Each constant has its one home here or in the module that alone uses it."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from andactl.dry_run.shape import ModelShape

BASE_RSS = 480 * 2**20  # python + torch + transformers + tokenizers (fitted intercept of the measured peaks)
# What an artifact stores per INT4 weight group beside the codes: a float16 scale, and a uint8 zero
# point for asymmetric groups (formats/int4.py, as written by formats/artifact.py)
INT4_SCALE_BYTES, INT4_ZERO_BYTES = 2, 1
INT4_UNPACKED_BYTES_PER_WEIGHT = 1 + 4 / 128  # formats.int4.Int4Weight between quantize_weights and pack (uint8 codes)
# quantize_tables: working copies of one vocabulary x hidden table in the run dtype (a Qwen3-0.6B-shaped
# RTN quantize peaks in this pass at 4.36-4.54 GB: the resident float32 model + ~2.6 tables; stop 37)
TABLE_COPIES = 3
# quantize_tables with method gptq: float32 copies of the vocabulary x hidden matrix GPTQ holds beside the
# model (its working W, the codes, the column blocks, allocator retention), after a calibration forward of
# the body. Fitted on one run (stop 63, AMD EPYC Zen 4): `andactl quantize smollm2-135m --weight-method rtn
# --bits 8 7 8 8 --table-method gptq` peaked at 1.99 GB in that pass where the RTN row said 1.38
TABLE_GPTQ_COPIES = 8
EIGH_FLOPS_PER_D3 = 9.0  # symmetric eigendecomposition ~ 9 D^3 float64 FLOPs
DISK_BYTES_PER_SECOND = 300e6  # read/write throughput assumed for loading and writing
GPTQ_FLOPS_PER_WEIGHT_K = 2.0  # column-wise error update: ~2 K float32 FLOPs per weight (fitted: 0.13B/0.49B/1.07B within 30%)
GPTQ_HESSIAN_BYTES = 8  # per [K, K] element: the float64 H, factored in place and read by blocks (passes/gptq.py)
GPTQ_WEIGHT_COPIES = 4  # float32 copies of a stacked weight GPTQ holds (W, Wᵀ, codes, dequantized)
# memory throughput: a decode step's weights and KV cache when sampling text (sampling.py), the top-k
# phase's selection per teacher logit (recover.py)
MEMORY_BYTES_PER_SECOND = 20e9


def int4_bytes_per_weight(step: dict) -> float:
    """Artifact bytes of one INT4 weight under the resolved ``quantize_weights`` step: half a byte of
    code plus its group's scale (and zero point) spread over the group (one group per row: as 4096)."""
    group = int(step["group_size"])
    group = group if group > 0 else 4096
    meta = INT4_SCALE_BYTES + (0 if step["symmetric"] else INT4_ZERO_BYTES)
    return 0.5 + meta / group


def attention_bytes(shape: ModelShape, batch: int, seqlen: int) -> int:
    """What one calibration batch's attention holds beside its activations: eager attention the
    float32 scores of every head (``B·H·S²·4``); transformers' sdpa, which every family andactl
    supports loads with, never materializes them and gets at most a ``B·S²`` bool mask, for a padded
    batch (an unpadded one none). Counting eager's scores for sdpa put the default `andactl slice
    smollm2-135m --ratio 0.25` (16 × 2048 per batch) at 5.17 GB against 2.76 GB measured (stop 63)."""
    if shape.attention == "eager":
        return batch * shape.heads * seqlen * seqlen * 4
    return batch * seqlen * seqlen


def gptq_work_bytes(shape: ModelShape) -> int:
    """GPTQ's own working set for one stack of linears: the float64 Hessian-side matrices and the
    float32 copies of the stacked weight (passes/gptq.py)."""
    return GPTQ_HESSIAN_BYTES * shape.largest_k**2 + GPTQ_WEIGHT_COPIES * shape.largest_group * 4


def storage_bytes(opts) -> int:
    """Bytes per element of the artifact's float tensors (--storage-dtype; fp16 by default)."""
    from andactl.formats.storage import parse_storage_dtype

    return torch.empty(0, dtype=parse_storage_dtype(getattr(opts, "storage_dtype", "fp16"))).element_size()


def gb(n: float) -> float:
    """``n`` bytes in GB (10^9), to three decimals."""
    return round(n / 1e9, 3)


def free_disk(output: str | None) -> int | None:
    """Free bytes on the file system that will hold ``output`` (its nearest existing parent); None
    without an output."""
    if not output:
        return None
    p = Path(output).expanduser().resolve()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free
