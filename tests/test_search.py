"""Anda Algorithm 1 (best-first mantissa search) on synthetic losses with known optima."""
from __future__ import annotations

import itertools
import random

import pytest

from andactl.errors import ConfigError
from andactl.passes.search_algorithm import SearchResult, search

WEIGHTS = (3.0, 1.0, 5.0, 2.0)  # cost per mantissa bit of each module type (distinct: unique optimum)


def linear_cost(t: tuple) -> float:
    return sum(w * m for w, m in zip(WEIGHTS, t))


def separable_loss(target: tuple, penalty=(0.4, 0.3, 0.2, 0.1)):
    def loss(t: tuple) -> float:
        return sum(p * max(0, ti - mi) for p, ti, mi in zip(penalty, target, t))
    return loss


class Counter:
    """Wraps a loss, recording every call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, t):
        self.calls.append(tuple(t))
        return self.fn(t)


def brute_force(loss, tolerance, lo=1, hi=13):
    feasible = [t for t in itertools.product(range(lo, hi + 1), repeat=4) if loss(t) <= tolerance]
    return min(feasible, key=lambda t: (linear_cost(t), t))


def check_invariants(res: SearchResult, calls: list, tolerance: float, max_evals: int) -> None:
    assert len(calls) == res.evaluations <= max_evals
    assert len(set(calls)) == len(calls)  # no tuple evaluated twice
    best_cost = None
    for entry in res.trace:
        assert entry["cost"] == linear_cost(tuple(entry["tuple"]))
        if entry["skipped"]:
            assert entry["loss"] is None and not entry["accepted"]
            assert best_cost is not None and entry["cost"] >= best_cost
            continue
        assert best_cost is None or entry["cost"] < best_cost
        if entry["accepted"]:
            assert entry["loss"] <= tolerance
            best_cost = entry["cost"]
        else:
            assert entry["loss"] > tolerance
    assert [tuple(e["tuple"]) for e in res.trace if not e["skipped"]] == calls
    if res.best is not None:
        assert res.best_cost == best_cost == linear_cost(res.best)
        assert res.best_loss <= tolerance


@pytest.mark.parametrize("target", [(6, 4, 8, 5), (4, 4, 4, 4), (9, 2, 3, 7), (13, 1, 1, 1)])
def test_finds_the_known_cheapest_tuple(target):
    loss = Counter(separable_loss(target))
    res = search(loss, linear_cost, tolerance=0.0, max_evals=200)
    assert res.best == target == brute_force(separable_loss(target), 0.0)
    assert res.best_loss == 0.0
    check_invariants(res, loss.calls, 0.0, 200)


def test_tolerance_admits_a_known_cheaper_tuple():
    # tolerance 0.25 admits one missing bit of type "u" (0.2) or two of "d" (0.2): the cheapest
    # admissible tuple drops u by one (saves 5) -- dropping d twice saves only 4, both would cost 0.4.
    target = (6, 5, 7, 6)
    loss = Counter(separable_loss(target))
    res = search(loss, linear_cost, tolerance=0.25, max_evals=200)
    assert res.best == (6, 5, 6, 6) == brute_force(separable_loss(target), 0.25)
    assert res.best_loss == pytest.approx(0.2)
    check_invariants(res, loss.calls, 0.25, 200)


def test_default_budget_of_32_evaluations_reaches_the_optimum_from_seed_6():
    target = (6, 5, 6, 4)
    loss = Counter(separable_loss(target))
    res = search(loss, linear_cost, tolerance=0.0)
    assert res.best == target and res.evaluations <= 32
    # seeds 4, 5 rejected, 6 accepted, then the descent: the first three evaluations are the seeds
    assert loss.calls[:3] == [(4, 4, 4, 4), (5, 5, 5, 5), (6, 6, 6, 6)]
    check_invariants(res, loss.calls, 0.0, 32)


@pytest.mark.parametrize("max_evals", [1, 3, 5, 10])
def test_evaluation_cap_is_respected(max_evals):
    loss = Counter(separable_loss((12, 12, 12, 12)))
    res = search(loss, linear_cost, tolerance=0.0, max_evals=max_evals)
    assert len(loss.calls) == res.evaluations == min(max_evals, 10)
    check_invariants(res, loss.calls, 0.0, max_evals)
    assert res.best == ((12, 12, 12, 12) if max_evals >= 9 else None)


def test_nothing_accepted_falls_back_to_16_bits():
    loss = Counter(lambda t: 1.0)
    res = search(loss, linear_cost, tolerance=0.01)
    assert res.best is None and res.best_cost is None and res.best_loss is None
    assert not res.found and res.chosen() == (16, 16, 16, 16)
    assert res.evaluations == 10 and all(not e["accepted"] for e in res.trace)  # the 10 seeds
    assert res.to_dict()["best"] is None


def test_nan_loss_is_never_accepted():
    res = search(lambda t: float("nan") if t[0] < 8 else 0.0, linear_cost, tolerance=0.5, max_evals=40)
    assert res.best is not None and res.best[0] >= 8


def test_skips_are_recorded_and_never_evaluated():
    loss = Counter(separable_loss((5, 5, 5, 5)))
    res = search(loss, linear_cost, tolerance=0.0, max_evals=100)
    skipped = [tuple(e["tuple"]) for e in res.trace if e["skipped"]]
    # the seeds above the accepted (5,5,5,5) are popped after it and skipped
    assert {(b,) * 4 for b in range(6, 14)} <= set(skipped)
    assert not set(skipped) & set(loss.calls)


@pytest.mark.parametrize("seed", range(12))
def test_random_separable_problems_local_optimum_and_determinism(seed):
    """Algorithm 1 only walks down from the cheapest accepted seed: with tolerance 0 the feasible
    set is a box and it finds the global optimum; with slack it ends in a local optimum (every
    one-bit-lower neighbour infeasible), no more expensive than the first accepted seed."""
    rng = random.Random(seed)
    target = tuple(rng.randint(1, 10) for _ in range(4))
    penalty = tuple(rng.uniform(0.05, 1.0) for _ in range(4))
    tolerance = (0.0, 0.3, 0.9)[seed % 3]
    fn = separable_loss(target, penalty)
    loss = Counter(fn)
    res = search(loss, linear_cost, tolerance, max_evals=400, min_bits=1)
    check_invariants(res, loss.calls, tolerance, 400)
    if tolerance == 0.0:
        assert res.best == brute_force(fn, tolerance)
    for i in range(4):
        lower = res.best[:i] + (res.best[i] - 1,) + res.best[i + 1:]
        assert res.best[i] == 1 or (lower in loss.calls and fn(lower) > tolerance)
    first_seed = next(tuple(e["tuple"]) for e in res.trace if e["accepted"])
    assert first_seed == next((b,) * 4 for b in range(4, 14) if fn((b,) * 4) <= tolerance)
    assert res.best_cost <= linear_cost(first_seed)
    again = search(fn, linear_cost, tolerance, max_evals=400)
    assert again.trace == res.trace and again.best == res.best


def test_ties_in_cost_are_broken_deterministically_by_tuple():
    res = search(lambda t: 0.0, lambda t: float(sum(t)), tolerance=0.0, max_evals=4, seeds=[3])
    assert [e["tuple"] for e in res.trace if not e["skipped"]] == [[3, 3, 3, 3], [2, 3, 3, 3], [1, 3, 3, 3], [1, 2, 3, 3]]


def test_min_bits_is_a_floor():
    res = search(lambda t: 0.0, linear_cost, tolerance=0.0, max_evals=100, seeds=[4], min_bits=3)
    assert res.best == (3, 3, 3, 3)
    assert all(min(e["tuple"]) >= 3 for e in res.trace)


@pytest.mark.parametrize("kwargs", [
    {"max_evals": 0}, {"seeds": []}, {"seeds": [17]}, {"seeds": [2], "min_bits": 3},
    {"min_bits": 0}, {"max_bits": 17}, {"tolerance": float("nan")},
])
def test_bad_arguments_raise_config_error(kwargs):
    args = {"tolerance": 0.1, **kwargs}
    with pytest.raises(ConfigError):
        search(lambda t: 0.0, linear_cost, **args)
