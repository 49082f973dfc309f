"""The pass lists a sweep runs, one home for each: the slicing (and recovery) of a ratio, the INT4
weights of a method, and the search, packing and tables of a tolerance. The runner runs them and
``check`` parses all of them before any work, so a bad option fails in seconds, not mid-sweep."""
from __future__ import annotations

from andactl.sweep.grid import RECOVERY_STEPS, SweepPoint


def slice_steps(ratio: float, recover: str, recover_steps: int) -> list[dict]:
    """SliceGPT at ``ratio`` (> 0), then the recovery ``recover`` names (none: no recovery)."""
    steps = [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": ratio}, {"pass": "slice"}]
    if recover != "none":
        steps.append({"pass": "recover", **RECOVERY_STEPS[recover], "steps": recover_steps})
    return steps


def weight_steps(method: str, settings) -> list[dict]:
    """INT4 weights of one method, shared by every tolerance of a sliced model."""
    return [{"pass": "quantize_weights", "method": method, "group_size": settings.group_size,
             "symmetric": settings.symmetric}]


def point_steps(tolerance: float, settings) -> list[dict]:
    """What one point adds to its INT4 weights: the Anda search, packing, the head/embedding tables."""
    steps = [{"pass": "anda_search", "tolerance": tolerance, "budget": settings.budget, "max_evals": settings.max_evals,
              "loss": settings.search_loss}, {"pass": "pack"}]
    if settings.head != "none" or settings.embeddings != "none":
        steps.append({"pass": "quantize_tables", "head": settings.head, "embeddings": settings.embeddings,
                      "group_size": settings.table_group, "clip": settings.table_clip, "method": settings.table_method})
    return steps


def point_recipe(point: SweepPoint, settings) -> list[dict]:
    """Every pass from the source model to ``point``'s artifact, in order."""
    head = slice_steps(point.ratio, point.recover, settings.recover_steps) if point.ratio > 0 else []
    return head + weight_steps(point.weight_method, settings) + point_steps(point.tolerance, settings)
