"""The CPU's FLOP rates a time estimate uses: probed by short GEMMs on this machine (in a child
process when a run follows in the same process), the shares of them each kind of work sustains, and
the fisher subspace search's step timed where it runs."""
from __future__ import annotations

import os

import torch

from andactl.errors import ConfigError
from andactl.kernels import split_gemm

FISHER_SEARCH_FLOPS = 12  # per search step and point, x D^2 x (D - d): R^T F R, R^T H R, QR, and their backward
# A dry run that probes the CPU times the search's step itself (pca.search_step_seconds) at the
# model's width, or at this width (the same share cut) for wider models, scaled by D^2 x cut: the
# step's small float64 products and QR run at a CPU-dependent share of the GEMM probe's rate (at
# SmolLM2's shape a search took 0.8-1.1x the time FISHER_SEARCH_FLOPS at the float64 rate predicts
# on the 2-core Xeon with AMX, 0.6-1.0x on the 2-core AMD EPYC Zen 4: stops 46 and 57,
# docs/local-2026-12-07e/fisher_step.log)
FISHER_PROBE_MAX_HIDDEN = 1024
# CPU time: the passes' forwards (and GPTQ's float32 updates) sustain this share of the FLOP rate a
# short torch.mm runs at in the same dtype on this machine (cpu_flops). Fitted on SmolLM2's
# anda_search evaluations and GPTQ in float32 on a 2-core Xeon with AMX (9.1 s per evaluation, 21 s
# of GPTQ; 297 GFLOP/s probe); on the AMD EPYC Zen 3 of earlier rounds the same share reproduces
# the 4e10 float32 FLOP/s fitted there from a ~100 GFLOP/s GEMM. 16-bit dtypes never count as faster
# than float32 (the passes are not GEMM alone), float64 (rotation, eigendecompositions) at half it.
CPU_EFFICIENCY = 0.41
# A probe beside other work reads low: `slice --basis fisher --cal-data mix --dry-run` said 2320 s
# beside a 2-thread eval on the 2-core Xeon and 411 s idle (measured run: 340 s; stop 46)
BUSY_LOAD_SHARE = 0.5
FLOAT64_SHARE = 0.5
GPU_FLOPS = 5.0e13
# FLOP/s the estimate assumes where it must not probe the CPU (a run follows in the same process)
NOMINAL_FLOPS = {"run": 1.0e11, "float32": 1.0e11, "float64": 5.0e10}
# recover's training runs under bf16 autocast where the CPU has native bf16: the student's steps at
# a train share of a 1024^3 bf16 torch.mm's rate (a 256-row one reads ±15% from one run to the next on
# AMX, this one ±8%), forward-only work (the in-process teacher, the held-out evaluations) at a
# forward share of it; elsewhere both at the run rate. The shares depend on what computes bf16
# (AUTOCAST_SHARES, keyed by whether AMX tiles are expected: split_gemm.tiles_expected):
# - AMX: a step reaches a small share of the tiles' rate, since the rest of it (float32 work,
#   elementwise passes, the optimiser) runs on the vector units. Fitted on the 2-core Xeon (stop 52,
#   a 1.07e12 FLOP/s probe): SmolLM2 sliced 25% --full, 40 steps, trained in 175 s with top-k targets
#   and 180 s with the teacher in process, whose forward of 4 x 256 tokens took 0.58 s.
# - AVX512-BF16 without AMX: both shares of the Xeon's scaled by 1.9, the estimate's training row over
#   the loop measured on the 2-core AMD EPYC Zen 4 (stop 56, a 4.35e11 FLOP/s probe: the same recovery,
#   40 steps in 229 s against 431 s estimated with the Xeon's shares, 190 steps in 1008 s against 1919;
#   docs/RECOVER.md thirty-first round).
AUTOCAST_PROBE_ROWS = 1024
AUTOCAST_SHARES = {"amx": (0.22, 0.50), "avx512_bf16": (0.42, 0.95)}


def _gemm_flops(dtype: torch.dtype, rows: int = 256) -> float:
    """FLOP/s of a (``rows`` x 1024) . (1024 x 1024) torch.mm in ``dtype`` on this CPU at torch's
    current thread count (best of three after a warm-up; ~2 ms in float32 on a 2-core Xeon)."""
    import time

    a, b = torch.ones(rows, 1024, dtype=dtype), torch.ones(1024, 1024, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * rows * 1024 * 1024 / max(best, 1e-9)


def busy_warning() -> str | None:
    """One line when other work already keeps this machine's CPUs busy (1-minute load average at
    least BUSY_LOAD_SHARE of the CPU count), since the rate probe then reads low and every time
    estimate high; None on an idle machine or where the load is unknown."""
    try:
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    except (OSError, AttributeError):
        return None
    if load < BUSY_LOAD_SHARE * cpus:
        return None
    return (f"the CPUs are busy (1-minute load {load:.1f} on {cpus} CPUs): the time estimates assume an idle "
            "machine and will read high")


def cpu_flops(dtype: torch.dtype) -> dict:
    """Sustained FLOP/s the time estimate uses on this CPU: ``run`` (forwards in ``dtype``),
    ``float32`` (GPTQ's updates) and ``float64`` (rotation, eigendecompositions); where training
    runs under bf16 autocast (native bf16), ``autocast``: the AUTOCAST_PROBE_ROWS bf16 GEMM's rate
    that recover's AUTOCAST_SHARES scale (autocast_shares)."""
    from andactl.models.loading import native_bf16

    f32 = CPU_EFFICIENCY * _gemm_flops(torch.float32)
    run = f32 if dtype in (torch.float32, torch.float64) else min(f32, CPU_EFFICIENCY * _gemm_flops(dtype))
    rates = {"run": run, "float32": f32, "float64": FLOAT64_SHARE * f32}
    if native_bf16():
        rates["autocast"] = _gemm_flops(torch.bfloat16, AUTOCAST_PROBE_ROWS)
    return rates


def fisher_search_seconds(D: int, cut: int, rates: dict, probe: bool) -> float:
    """Seconds of one subspace search of `rotate --basis fisher` (FISHER_ITERS steps) at width
    ``D`` with ``cut`` directions dropped: with ``probe`` a step timed on this CPU
    (pca.search_step_seconds; at FISHER_PROBE_MAX_HIDDEN and the same share cut for wider models,
    scaled by D^2 x cut), else FISHER_SEARCH_FLOPS per step at ``rates["float64"]``."""
    from andactl.passes.pca import FISHER_ITERS, search_step_seconds

    if not probe:
        return FISHER_ITERS * FISHER_SEARCH_FLOPS * D**2 * cut / rates["float64"]
    dp = min(D, FISHER_PROBE_MAX_HIDDEN)
    cp = max(1, round(cut * dp / D))
    return FISHER_ITERS * search_step_seconds(dp, cp) * (D**2 * cut) / (dp**2 * cp)


def autocast_shares() -> tuple[float, float]:
    """(train, forward) shares of the ``autocast`` probe that recover's steps and forward-only work
    reach on this CPU: AUTOCAST_SHARES["amx"] where AMX tiles are expected, else those of AVX512-BF16."""
    return AUTOCAST_SHARES["amx" if split_gemm.tiles_expected() else "avx512_bf16"]


def probed_rates(dtype_name: str) -> dict:
    """cpu_flops of ``dtype_name`` probed in a child process, for an estimate that a run in this
    process follows (the probe's GEMMs must not run here first: see _estimate)."""
    import json
    import subprocess
    import sys

    code = ("import json; from andactl.dry_run.rates import cpu_flops; from andactl.models.loading import parse_dtype; "
            f"print(json.dumps(cpu_flops(parse_dtype({dtype_name!r}))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"could not probe this CPU's rates in a child process (exit {res.returncode}: {last})") from None
