"""What the in-memory and the streamed dry-run reports share: the figures every pass row is computed
from (``RunFigures``), the cost of ``quantize_weights`` and the report's common fields."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from andactl.dry_run.costs import GPTQ_FLOPS_PER_WEIGHT_K, GPTQ_WEIGHT_COPIES, gb, gptq_work_bytes
from andactl.dry_run.shape import ModelShape, shape_fields

# besides the weights, an artifact holds its tokenizer, config, recipe and report (the tokenizer
# dominates: SmolLM2's tokenizer.json is 3.5 MB)
ARTIFACT_EXTRA_BYTES = 20 * 2**20


@dataclass(frozen=True)
class RunFigures:
    """One dry run's inputs, fixed before any pass row: ``b`` bytes per element of the run dtype,
    ``N`` calibration tokens held by one rank, ``cal_bytes`` their residual in the run dtype and
    ``cal_host`` the part of it in host RAM (0 when spilled), ``act_batch`` one calibration batch's
    activations, ``fwd_flops`` one forward over this rank's calibration share, ``flops`` the run's
    FLOP rate, ``rates`` every rate (probed or nominal; ``timing``: probed)."""
    opts: object
    shape: ModelShape
    device: torch.device
    world: int
    b: int
    N: int
    cal_bytes: int
    cal_host: int
    act_batch: int
    fwd_flops: float
    flops: float
    rates: dict
    timing: bool

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"


def artifact_bytes(out_params: int, out_b: float) -> int:
    """Bytes of the written artifact: its weights at ``out_b`` bytes each plus ARTIFACT_EXTRA_BYTES."""
    return int(out_params * out_b) + ARTIFACT_EXTRA_BYTES


def quantize_weights_cost(run: RunFigures, step: dict) -> tuple[int, float]:
    """The resolved ``quantize_weights`` step's working bytes (besides the INT4 codes it leaves) and
    seconds: GPTQ holds the calibration, one batch's activations and its own matrices and runs two
    calibration forwards plus the column updates; RTN holds one stack of linears at a time."""
    shape = run.shape
    if step.get("method") == "gptq":
        work = run.cal_host + run.act_batch + gptq_work_bytes(shape)
        seconds = 2 * run.fwd_flops / run.flops + GPTQ_FLOPS_PER_WEIGHT_K * shape.parameters * shape.largest_k / run.rates["float32"]
        return work, seconds
    return GPTQ_WEIGHT_COPIES * shape.largest_group * 4, shape.parameters * 20 / 1e9


def report_fields(run: RunFigures, rows: list[dict], out_params: int, out_bytes: int, free: int | None) -> dict:
    """The fields both reports carry, from the rows and the output; a report adds its own after them."""
    shape, P = run.shape, run.shape.parameters
    return {
        "model": run.opts.model, "model_type": shape.model_type, "parameters": P, "output_parameters": out_params,
        "dtype": run.opts.dtype, "device": str(run.device), "world_size": run.world,
        "calibration_tokens_per_rank": run.N,
        "model_bytes_run_dtype_gb": gb(P * run.b), "weights_on_disk_gb": gb(shape.weights_on_disk),
        "passes": rows,
        "peak_host_ram_gb": max(r["host_ram_gb"] for r in rows), "peak_device_gb": max(r["device_gb"] for r in rows),
        "disk_gb": gb(out_bytes), "free_disk_gb": gb(free) if free is not None else None,
        "seconds": round(sum(r["seconds"] for r in rows), 1), "shape": shape_fields(shape),
        "calibration_gb": gb(run.cal_bytes), "activations_spilled": run.cal_host == 0,
        "cpu_flop_rates": {k: float(f"{v:.3g}") for k, v in run.rates.items()}, "rates_probed": run.timing,
    }
