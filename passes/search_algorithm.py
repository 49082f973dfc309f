"""Algorithm 1 of Anda (Fang et al., HPCA 2025): best-first search over the mantissa tuple
``(M_qkv, M_o, M_u, M_d)`` under an accuracy tolerance, as a pure function.

A priority queue is seeded with the uniform tuples ``(b, b, b, b)`` for ``b`` in ``seeds`` and
popped cheapest first (ties broken by the tuple, lexicographically, so runs are deterministic).
A popped candidate that is not strictly cheaper than the best accepted so far is skipped without
evaluation. Otherwise it is evaluated (``loss = evaluate(tuple)``, at most ``max_evals`` calls, a
cache guarantees no tuple is evaluated twice); it is accepted when ``loss <= tolerance``, becomes
the best, and its four one-bit-lower neighbours (one coordinate − 1, not below ``min_bits``, not
seen before) are pushed; ``max_bits`` only bounds the seeds (the search never moves up). If
nothing is accepted, ``best`` is None: the caller then keeps the
activations at 16 bits (``SearchResult.chosen()``), the "no saving found" fall-back.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

from andactl.errors import ConfigError

FALLBACK_BITS = 16
N_TYPES = 4


@dataclass
class SearchResult:
    """Outcome of the search. ``trace`` lists every popped candidate in pop order as
    ``{tuple, cost, loss (None if skipped), accepted, skipped}``; ``evaluations`` counts calls of
    ``evaluate``."""

    best: tuple[int, ...] | None
    best_cost: float | None
    best_loss: float | None
    trace: list[dict] = field(default_factory=list)
    evaluations: int = 0

    @property
    def found(self) -> bool:
        return self.best is not None

    def chosen(self, fallback_bits: int = FALLBACK_BITS) -> tuple[int, ...]:
        """``best``, or the uniform ``fallback_bits`` tuple when nothing met the tolerance."""
        return self.best if self.best is not None else (fallback_bits,) * N_TYPES

    def to_dict(self) -> dict:
        return {
            "best": None if self.best is None else list(self.best),
            "best_cost": self.best_cost,
            "best_loss": self.best_loss,
            "evaluations": self.evaluations,
            "trace": self.trace,
        }


def _validate(tolerance: float, max_evals: int, seeds: list[int], min_bits: int, max_bits: int) -> None:
    if not 1 <= min_bits <= max_bits <= 16:
        raise ConfigError(f"search bit range must satisfy 1 <= min_bits <= max_bits <= 16, got {min_bits}..{max_bits}")
    if max_evals < 1:
        raise ConfigError(f"search max_evals must be >= 1, got {max_evals}")
    if not seeds:
        raise ConfigError("search needs at least one seed bit-width")
    bad = [b for b in seeds if not min_bits <= b <= max_bits]
    if bad:
        raise ConfigError(f"search seeds {bad} are outside the bit range {min_bits}..{max_bits}")
    if math.isnan(tolerance):
        raise ConfigError("search tolerance must be a number, got NaN")


def search(
    evaluate: Callable[[tuple], float],
    cost: Callable[[tuple], float],
    tolerance: float,
    max_evals: int = 32,
    seeds: Iterable[int] = range(4, 14),
    min_bits: int = 1,
    max_bits: int = 16,
) -> SearchResult:
    """Anda Algorithm 1 (see module docstring).

    Invariants: ``evaluate`` is called at most ``max_evals`` times and never twice on one tuple;
    every accepted tuple has ``loss <= tolerance`` (a NaN loss is never accepted); each accepted
    tuple is strictly cheaper than the one accepted before it; a skipped tuple costs at least
    the best cost at the moment it was popped; the result depends only on the inputs."""
    seeds = sorted({int(b) for b in seeds})
    _validate(tolerance, max_evals, seeds, min_bits, max_bits)
    heap: list[tuple[float, tuple[int, ...]]] = []
    seen: set[tuple[int, ...]] = set()

    def push(t: tuple[int, ...]) -> None:
        if t in seen:
            return
        seen.add(t)
        c = float(cost(t))
        if math.isnan(c):
            raise ConfigError(f"search: the cost model returned NaN for {list(t)}")
        heapq.heappush(heap, (c, t))

    for b in seeds:
        push((b,) * N_TYPES)

    cache: dict[tuple[int, ...], float] = {}
    result = SearchResult(best=None, best_cost=None, best_loss=None)
    while heap and result.evaluations < max_evals:
        c, t = heapq.heappop(heap)
        if result.best_cost is not None and not c < result.best_cost:
            result.trace.append({"tuple": list(t), "cost": c, "loss": None, "accepted": False, "skipped": True})
            continue
        if t not in cache:
            cache[t] = float(evaluate(t))
            result.evaluations += 1
        loss = cache[t]
        accepted = loss <= tolerance
        result.trace.append({"tuple": list(t), "cost": c, "loss": loss, "accepted": accepted, "skipped": False})
        if not accepted:
            continue
        result.best, result.best_cost, result.best_loss = t, c, loss
        for i in range(N_TYPES):
            if t[i] - 1 >= min_bits:
                push(t[:i] + (t[i] - 1,) + t[i + 1 :])
    return result
