"""Pareto frontier and the best point for a budget (pure functions over point dicts)."""
from __future__ import annotations

from andactl.errors import ConfigError


def frontier(points: list[dict], x: str, y: str = "ppl") -> list[dict]:
    """Points not dominated in (``x``, ``y``), both minimised, sorted by ``x``.

    Invariant: no returned point has another point (returned or not) with x <= and y <= and one
    of them strictly smaller; every point outside is dominated by a returned one."""
    ordered = sorted(points, key=lambda p: (p[x], p[y]))
    out: list[dict] = []
    best_y = float("inf")
    for p in ordered:
        if p[y] < best_y:
            out.append(p)
            best_y = p[y]
    return out


def _violation(p: dict, limits: dict[str, float]) -> float:
    """Largest relative excess over the limits (0 when every limit is met)."""
    return max([0.0] + [(p[k] - v) / abs(v) if v else p[k] - v for k, v in limits.items()])


def pick_best(points: list[dict], max_bytes: float | None = None, max_energy: float | None = None,
              max_ppl_increase: float | None = None) -> dict:
    """The best point within the limits: lowest perplexity under a bytes/energy budget (fewest
    bytes when only a perplexity limit is given). ConfigError listing the nearest points if none fits."""
    limits = {k: v for k, v in (("bytes", max_bytes), ("energy", max_energy), ("ppl_increase", max_ppl_increase))
              if v is not None}
    if not limits:
        raise ConfigError("pick_best needs at least one of --max-bytes, --max-energy, --max-ppl-increase")
    ok = [p for p in points if _violation(p, limits) == 0.0]
    if not ok:
        near = sorted(points, key=lambda p: _violation(p, limits))[:3]
        listed = "; ".join(f"{p['key']} (bytes {p['bytes']:,}, energy {p['energy']:.4g}, ppl +{100 * p['ppl_increase']:.2f}%)"
                           for p in near)
        spec = ", ".join(f"{k} <= {v:g}" for k, v in limits.items())
        raise ConfigError(f"no sweep point meets {spec}; nearest: {listed}")
    if max_bytes is None and max_energy is None:
        return min(ok, key=lambda p: (p["bytes"], p["ppl"]))
    return min(ok, key=lambda p: (p["ppl"], p["bytes"]))
