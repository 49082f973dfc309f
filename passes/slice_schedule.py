"""Per-point slicing schedules for SliceGPT's ``rotate`` pass.

``uniform`` (SliceGPT) keeps the same width at every residual-stream point. ``variance`` keeps, at
every point, the fewest leading principal components (a multiple of ``round_to``) whose share of
that point's spectrum reaches one common threshold, the threshold chosen as high as the weight
budget of the uniform plan allows: the sliced model has at most the uniform plan's parameter count
(shortcuts included), and points whose variance is spread over more directions keep more width.
"""
from __future__ import annotations

import math

import torch

from andactl.errors import ConfigError

SCHEDULES = ("uniform", "variance")


def layer_shapes(adapter) -> dict:
    """Weights per unit of width at every point of the unsliced model: ``embedding`` (embedding
    rows), ``head`` (head rows), and per layer ``attn_in`` (rows of q/k/v), ``attn_out`` (input
    width of o_proj), ``mlp_in`` (rows of the MLP input linears), ``mlp_out`` (input width of the
    down projection)."""
    layers = []
    for layer in adapter.layers():
        layers.append({
            "attn_in": sum(int(lin.out_features) for lin in adapter.attn_inputs(layer)),
            "attn_out": int(adapter.attn_output(layer).in_features),
            "mlp_in": sum(int(lin.out_features) for lin in adapter.mlp_inputs(layer)),
            "mlp_out": int(adapter.mlp_output(layer).in_features),
        })
    emb = sum(int(e.num_embeddings) for e in adapter.embeddings())
    return {"embedding": emb, "head": int(adapter.head().out_features), "layers": layers}


def plan_parameters(shapes: dict, plan: dict, parallel: bool = False) -> int:
    """Weights (no biases or norms) of the sliced model a plan describes: linears, embeddings,
    head and the shortcut matrices (``attn_in x mlp_in`` and ``mlp_in x out``, or ``attn_in x out``
    for parallel blocks)."""
    total = shapes["embedding"] * plan["embedding"] + shapes["head"] * plan["head_in"]
    for s, d in zip(shapes["layers"], plan["layers"]):
        a, m, o = d["attn_in"], d["mlp_in"], d["out"]
        if parallel:  # both branches read the block input and write the block output
            total += (s["attn_in"] + s["mlp_in"]) * a + (s["attn_out"] + s["mlp_out"]) * o + a * o
        else:
            total += s["attn_in"] * a + s["attn_out"] * m + s["mlp_in"] * m + s["mlp_out"] * o + a * m + m * o
    return total


def _width(vals: torch.Tensor, share: float, round_to: int) -> int:
    """Fewest leading components (rounded up to ``round_to``, at most all) holding ``share``."""
    frac = torch.cumsum(vals.double(), 0) / vals.double().sum()
    n = int(torch.searchsorted(frac, torch.tensor([share], dtype=frac.dtype)).item()) + 1
    D = int(vals.numel())
    return min(D, max(round_to, math.ceil(n / round_to) * round_to))


def variance_plan(spectra: dict, shapes: dict, uniform: dict, round_to: int,
                  parallel: bool = False) -> tuple[dict, float]:
    """The ``variance`` schedule (module docstring) within the parameter count of ``uniform``, and
    the common share of variance it keeps.

    ``spectra``: descending eigenvalues at every point, ``{"embedding": vals, "layers": [{"mlp_in":
    vals, "out": vals}]}`` (parallel blocks: ``out`` only). A point the uniform plan keeps whole
    (the last output without ``slice_head``) stays whole. Invariant: the result's
    ``plan_parameters`` is <= the uniform plan's, and its dims chain (each layer's input is the
    previous output)."""
    budget = plan_parameters(shapes, uniform, parallel)
    D = int(spectra["embedding"].numel())

    def plan_at(share: float) -> dict:
        emb = _width(spectra["embedding"], share, round_to)
        layers, prev = [], emb
        for spec, ref in zip(spectra["layers"], uniform["layers"]):
            out = D if ref["out"] >= D else _width(spec["out"], share, round_to)
            mid = prev if parallel else _width(spec["mlp_in"], share, round_to)
            layers.append({"attn_in": prev, "mlp_in": mid, "out": out})
            prev = out
        return {"embedding": emb, "layers": layers, "head_in": prev}

    lo, hi = 0.0, 1.0
    if plan_parameters(shapes, plan_at(lo), parallel) > budget:
        raise ConfigError("the variance schedule cannot meet the uniform plan's parameter budget "
                          f"even at the narrowest widths (round_to {round_to})")
    for _ in range(60):  # the largest common share whose plan fits the budget
        mid = (lo + hi) / 2
        if plan_parameters(shapes, plan_at(mid), parallel) <= budget:
            lo = mid
        else:
            hi = mid
    return plan_at(lo), lo
