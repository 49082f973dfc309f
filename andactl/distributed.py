"""Data parallelism on torch.distributed: ``torchrun --nproc-per-node N -m andactl slice ...``.

Every rank loads the model and builds the same calibration set, keeps only its contiguous share of
the samples (``shard``), and the statistics the passes reduce over tokens are summed over ranks:
SliceGPT Gram matrices and GPTQ Hessians (float64, ``all_reduce_sum``), calibration losses. Bases
computed from a reduced matrix are broadcast from rank 0, so every rank applies bit-identical
rotations and quantizes bit-identically; rank 0 alone writes the artifact and prints results.

Without torchrun (no ``WORLD_SIZE`` > 1 in the environment) every helper is a no-op and the
process is rank 0 of a world of 1. The process group is torch's own (``torch.distributed``); this
module keeps no state of its own. Backend: gloo on CPU, nccl on CUDA.
"""
from __future__ import annotations

import datetime
import hashlib
import os

import torch
import torch.distributed as dist

from andactl.errors import ConfigError

TIMEOUT = datetime.timedelta(minutes=30)  # collective timeout: a rank that died never hangs the others longer


def requested_world() -> int:
    """The world size torchrun asks for (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: str) -> str:
    """Joins torchrun's process group when ``WORLD_SIZE`` > 1 (gloo for CPU, nccl for CUDA) and
    returns the device this rank uses (``cuda`` becomes ``cuda:<LOCAL_RANK>``). Idempotent."""
    if requested_world() <= 1:
        return device
    cuda = device.startswith("cuda")
    if cuda and device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return device


def finish() -> None:
    """Waits for every rank (rank 0 has written) and leaves the process group."""
    if active():
        dist.barrier()
        dist.destroy_process_group()


def check_world(samples: int) -> None:
    """Every rank needs at least one calibration sample."""
    n = world() if active() else requested_world()
    if n > samples:
        raise ConfigError(f"world size {n} is larger than the {samples} calibration samples; "
                          f"use at most {samples} processes or more --cal-samples")


def agree(what: str, payload: bytes) -> None:
    """Raises ConfigError on EVERY rank when ranks hold different ``payload``s (compared by hash),
    so all ranks fail together instead of one hanging in a later collective."""
    if not active():
        return
    digest = hashlib.sha256(payload).hexdigest()[:16]
    digests: list = [None] * world()
    dist.all_gather_object(digests, digest)
    odd = [r for r, d in enumerate(digests) if d != digests[0]]
    if odd:
        raise ConfigError(f"ranks disagree on the {what}: rank {odd[0]} differs from rank 0 "
                          f"(launch every rank with the same command, files and environment)")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over ranks, in place (and returned). Identity in a world of 1."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """``t`` replaced by rank ``src``'s value on every rank, in place (and returned)."""
    if active():
        dist.broadcast(t, src=src)
    return t


def shard(calibration):
    """This rank's contiguous share of the calibration samples (all of them in a world of 1);
    the shares of ranks 0..N-1 concatenated are the whole set, in order, and each share's
    ``first_sample`` is the whole set's index of its row 0."""
    if not active():
        return calibration
    from andactl.data.calibration import CalibrationData

    agree("calibration data", calibration.input_ids.cpu().numpy().tobytes() + calibration.attention_mask.cpu().numpy().tobytes())
    idx = torch.tensor_split(torch.arange(calibration.num_samples), world())[rank()]
    first = int(idx[0]) if len(idx) else calibration.num_samples
    return CalibrationData(calibration.input_ids[idx], calibration.attention_mask[idx], calibration.batch_size,
                           calibration.first_sample + first)
