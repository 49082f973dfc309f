"""``recover --minutes``: how many optimiser steps fit a wall-time budget on this machine.

The step count is chosen before anything is trained, from ``--dry-run``'s estimate of the whole
command (load, teacher, training, write), which is linear in the steps: a fixed part plus a cost per
step. The CPU rates are probed in a child process, so the run that follows in this process is the
same run ``--steps N`` gives (the probe's GEMMs never run beside it). A run (not a dry run) then
times one of its own optimiser steps, also in a child process (``step_timing``), and scales the
estimate's training row by the measured step over the estimated one (the other rows, the teacher's
sampling among them, stay as estimated); the seconds already spent and a TIMING_MARGIN share of
the budget come off first. Invariant: the chosen count's (scaled) estimate
is within what is left of the budget; a budget that holds no step is refused before any weight is
read in this process.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from andactl.errors import ConfigError

# the two step counts whose estimates give the fixed part and the per-step cost
PROBE_STEPS = (10, 1010)
# share of the budget a timed run leaves unplanned, for the host's drift within a run: on the 2-core
# Xeon, `recover FMIX --full --minutes 20` planned with 5% took 20 min 42 s, its step 3.19 s when
# timed and 3.8 s by the end (docs/RECOVER.md, thirtieth round)
TIMING_MARGIN = 0.10
# the most seconds of a process's age counted as the interpreter's start-up (2-3 s for andactl); an
# older process (main() called from a long-lived interpreter) counts from the command instead
STARTUP_MAX_SECONDS = 60.0


@dataclass(frozen=True)
class StepBudget:
    """``steps`` chosen for ``seconds`` of wall time: ``fixed`` s before the first step (loading,
    the teacher's phase, writing) + ``per_step`` s each, as the estimate reads on this machine;
    for a timed run, ``step_seconds`` is the measured step, ``scale`` the factor the estimate's
    training row was multiplied by (``fixed`` and ``per_step`` include it) and ``spent`` the
    seconds gone before."""

    seconds: float
    steps: int
    fixed: float
    per_step: float
    step_seconds: float | None = None
    scale: float = 1.0
    spent: float = 0.0

    def line(self) -> str:
        planned = (self.fixed + self.steps * self.per_step) / 60
        if self.step_seconds is None:
            return (f"--minutes {self.seconds / 60:g}: {self.steps} steps fit on this machine (estimated "
                    f"{self.fixed:.0f} s fixed + {self.per_step:.2f} s per step, {planned:.1f} min in all; "
                    f"--steps {self.steps} repeats this run)")
        return (f"--minutes {self.seconds / 60:g}: {self.steps} steps fit on this machine (one step timed at "
                f"{self.step_seconds:.2f} s, {self.scale:.2f}x the estimate's, which scales its training row: "
                f"{self.spent:.0f} s spent + {self.fixed:.0f} s fixed + {self.per_step:.2f} s per step = "
                f"{self.spent / 60 + planned:.1f} min, {TIMING_MARGIN:.0%} of the budget kept in reserve; "
                f"--steps {self.steps} repeats this run)")


def process_age_seconds() -> float | None:
    """Seconds since this process started (the kernel's start time in /proc/self/stat against
    /proc/uptime, to a clock tick), so that --minutes counts the interpreter's start-up and imports
    too; None where /proc cannot tell (not Linux)."""
    import os

    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, after the command's name
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def command_started() -> float:
    """``time.perf_counter()`` at this process's start (process_age_seconds), or now where that is
    unknown or older than STARTUP_MAX_SECONDS: the ``started`` a command run from the ``andactl``
    entry point counts --minutes from."""
    import time

    age = process_age_seconds()
    return time.perf_counter() - (age if age is not None and age <= STARTUP_MAX_SECONDS else 0.0)


def steps_within(seconds: float, estimate_of: Callable[[int], float], budget: float | None = None,
                 used: str = "") -> StepBudget:
    """The most steps whose estimated wall time (``estimate_of(steps)``, seconds) is at most
    ``seconds``; ConfigError when not even one step fits. ``budget``: the --minutes the message
    names (default ``seconds``); ``used``: what the message adds about the part of the budget
    already gone."""
    budget = seconds if budget is None else budget
    a, b = PROBE_STEPS
    t_a, t_b = estimate_of(a), estimate_of(b)
    per_step = max((t_b - t_a) / (b - a), 1e-9)
    fixed = max(t_a - a * per_step, 0.0)
    steps = int((seconds - fixed) // per_step)
    while steps >= 1 and estimate_of(steps) > seconds:  # the estimate rounds and counts held-out passes per step
        steps -= 1
    if steps < 1:
        raise ConfigError(f"--minutes {budget / 60:g} holds no training step on this machine: the run is estimated "
                          f"at {fixed / 60:.1f} min before its first step and {per_step:.1f} s per step{used} "
                          "(see --dry-run)")
    return StepBudget(budget, steps, fixed, per_step)


def timed_steps_within(seconds: float, spent: float, step_seconds: float, estimated_step: float,
                       estimate_of: Callable[[int], float], training_of: Callable[[int], float]) -> StepBudget:
    """steps_within what is left of ``seconds`` after ``spent`` and TIMING_MARGIN of it, with the
    estimate's training row (``training_of(steps)``, part of ``estimate_of(steps)``) scaled by
    ``step_seconds`` (measured) over ``estimated_step`` (the estimate's own seconds per optimiser
    step, held-out passes excluded)."""
    scale = step_seconds / max(estimated_step, 1e-9)
    left = seconds * (1 - TIMING_MARGIN) - spent
    used = (f", and {spent:.0f} s of the {seconds:.0f} s are spent already (the command's start and the timed steps) "
            f"with {TIMING_MARGIN:.0%} kept in reserve")
    found = steps_within(left, lambda n: estimate_of(n) + (scale - 1) * training_of(n), budget=seconds, used=used)
    return StepBudget(seconds, found.steps, found.fixed, found.per_step, step_seconds, scale, spent)


def recover_steps(seconds: float, recipe_for: Callable[..., object], opts, started: float | None = None,
                  timed: Callable[[], float | None] | None = None) -> StepBudget:
    """steps_within for a recover command: ``recipe_for(steps, **overrides)`` is its recipe at that
    step count (overrides: recover parameters), estimated with ``opts`` at CPU rates probed once in
    a child process and kept in ``opts.cpu_rates``, so that a ``--dry-run`` shows the same estimate
    (a CUDA run's passes use the nominal GPU rate). ``timed``: the run's measured seconds per step
    (step_timing; None if it could not be timed) and ``started``: ``time.perf_counter()`` when the
    command began; without them (a dry run), or when the run is estimated over the memory
    available (the timing would hold as much), the estimate alone decides."""
    import time

    from andactl.dry_run.estimate import estimate
    from andactl.dry_run.memory import over_memory_warning
    from andactl.dry_run.rates import busy_warning, probed_rates
    from andactl.dry_run.recover import RECOVER_TRAINING_ROW

    if opts.cpu_rates is None:
        busy = busy_warning()  # a busy machine probes slow: fewer steps than an idle one would hold
        if busy:
            logging.getLogger("andactl").warning(busy)
        opts.cpu_rates = probed_rates(opts.dtype)

    estimated: dict[tuple, tuple[float, float]] = {}  # each count's estimate once: both its figures are read

    def parts_of(steps: int, **overrides) -> tuple[float, float]:  # (the whole command, its training row)
        key = (steps, *sorted(overrides.items()))
        if key not in estimated:
            report = estimate(recipe_for(steps, **overrides), opts, check_disk=False, timing=True,
                              rates=opts.cpu_rates)
            training = sum(r["seconds"] for r in report["passes"] if r["pass"] == RECOVER_TRAINING_ROW)
            estimated[key] = (float(report["seconds"]), float(training))
        return estimated[key]

    def seconds_of(steps: int) -> float:
        return parts_of(steps)[0]

    planned = steps_within(seconds, seconds_of)  # refused here, before the timing loads any weight
    if timed is not None and over_memory_warning(recipe_for(planned.steps), opts):
        logging.getLogger("andactl").warning(
            "recover --minutes: no step is timed (the run is estimated over the memory available, and so would "
            "the timing be); the step count rests on the estimate alone")
        timed = None
    measured = timed() if timed is not None else None
    if measured is None:
        return planned
    a, b = PROBE_STEPS
    never = {"eval_every": 10 * b}  # the estimate's training steps alone, as the timing measures them
    estimated_step = (parts_of(b, **never)[1] - parts_of(a, **never)[1]) / (b - a)
    spent = time.perf_counter() - started if started is not None else 0.0
    return timed_steps_within(seconds, spent, measured, estimated_step, seconds_of, lambda n: parts_of(n)[1])
