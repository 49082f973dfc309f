"""``recover --minutes``: how many optimiser steps fit a wall-time budget on this machine.

The step count is chosen before anything is trained, from ``--dry-run``'s estimate of the whole
command (load, teacher, training, write), which is linear in the steps: a fixed part plus a cost per
step. The CPU rates are probed in a child process, so the run that follows in this process is the
same run ``--steps N`` gives (the probe's GEMMs never run beside it). Invariant: the chosen count's
own estimate is within the budget; a budget that holds no step is refused before any weight is read.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from andactl.errors import ConfigError

# the two step counts whose estimates give the fixed part and the per-step cost
PROBE_STEPS = (10, 1010)


@dataclass(frozen=True)
class StepBudget:
    """``steps`` chosen for ``seconds`` of wall time: ``fixed`` s before the first step (loading,
    the teacher's phase, writing) + ``per_step`` s each, as the estimate reads on this machine."""

    seconds: float
    steps: int
    fixed: float
    per_step: float

    def line(self) -> str:
        return (f"--minutes {self.seconds / 60:g}: {self.steps} steps fit on this machine (estimated "
                f"{self.fixed:.0f} s fixed + {self.per_step:.2f} s per step, "
                f"{(self.fixed + self.steps * self.per_step) / 60:.1f} min in all; --steps {self.steps} repeats this run)")


def steps_within(seconds: float, estimate_of: Callable[[int], float]) -> StepBudget:
    """The most steps whose estimated wall time (``estimate_of(steps)``, seconds) is at most
    ``seconds``; ConfigError when not even one step fits."""
    a, b = PROBE_STEPS
    t_a, t_b = estimate_of(a), estimate_of(b)
    per_step = max((t_b - t_a) / (b - a), 1e-9)
    fixed = max(t_a - a * per_step, 0.0)
    steps = int((seconds - fixed) // per_step)
    while steps >= 1 and estimate_of(steps) > seconds:  # the estimate rounds and counts held-out passes per step
        steps -= 1
    if steps < 1:
        raise ConfigError(f"--minutes {seconds / 60:g} holds no training step on this machine: the run is estimated "
                          f"at {fixed / 60:.1f} min before its first step and {per_step:.1f} s per step (see --dry-run)")
    return StepBudget(seconds, steps, fixed, per_step)


def recover_steps(seconds: float, recipe_for: Callable[[int], object], opts) -> StepBudget:
    """steps_within for a recover command: ``recipe_for(steps)`` is its recipe at that step count,
    estimated with ``opts`` at CPU rates probed once in a child process and kept in
    ``opts.cpu_rates``, so that a ``--dry-run`` shows the same estimate (a CUDA run's passes use the
    nominal GPU rate)."""
    from andactl.dry_run import busy_warning, estimate, probed_rates

    if opts.cpu_rates is None:
        busy = busy_warning()  # a busy machine probes slow: fewer steps than an idle one would hold
        if busy:
            logging.getLogger("andactl").warning(busy)
        opts.cpu_rates = probed_rates(opts.dtype)

    def seconds_of(steps: int) -> float:
        return float(estimate(recipe_for(steps), opts, check_disk=False, timing=True, rates=opts.cpu_rates)["seconds"])

    return steps_within(seconds, seconds_of)
