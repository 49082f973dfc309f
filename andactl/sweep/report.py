"""Sweep outputs: the stdout table, ``sweep.json`` and ``pareto.png`` (perplexity against bytes and
against energy, frontier drawn, every point labelled)."""
from __future__ import annotations

import json
from pathlib import Path

from andactl.sweep.pareto import frontier


def summary(records: list[dict], base: dict, reused: int, best: dict | None, wall_seconds: float) -> dict:
    """The sweep's JSON document: points (with frontier flags), frontiers by key, the pick."""
    on_bytes = {p["key"] for p in frontier(records, "bytes")}
    on_energy = {p["key"] for p in frontier(records, "energy")}
    points = [{**{k: v for k, v in r.items() if k != "settings"},
               "frontier_bytes": r["key"] in on_bytes, "frontier_energy": r["key"] in on_energy} for r in records]
    return {"base_ppl": base["ppl"], "settings": records[0]["settings"] if records else base.get("settings"),
            "points": points, "frontier_bytes": [p["key"] for p in frontier(records, "bytes")],
            "frontier_energy": [p["key"] for p in frontier(records, "energy")],
            "reused_points": reused, "best": best["key"] if best else None, "wall_seconds": round(wall_seconds, 1)}


def write_json(out: Path, doc: dict) -> Path:
    from andactl.formats.output_dir import write_atomic

    path = Path(out) / "sweep.json"
    write_atomic(path, json.dumps(doc, indent=2) + "\n")
    return path


def pareto_png(doc: dict) -> bytes:
    """Two panels, ppl vs MiB and ppl vs energy; frontier as a line, points labelled by key."""
    from andactl.plotting import png_bytes, subplots

    pts = doc["points"]
    fig, axes = subplots(1, 2, figsize=(13, 5.5))
    for ax, x, flag, label, scale in ((axes[0], "bytes", "frontier_bytes", "artifact size (MiB)", 2**20),
                                      (axes[1], "energy", "frontier_energy", "energy per token (cost model, pJ)", 1.0)):
        for on_front in (False, True):  # frontier markers drawn last, over points at the same place
            sel = [p for p in pts if bool(p[flag]) == on_front]
            ax.scatter([p[x] / scale for p in sel], [p["ppl"] for p in sel], zorder=3 + on_front,
                       c="tab:red" if on_front else "tab:gray")
        front = sorted((p for p in pts if p[flag]), key=lambda p: p[x])
        ax.plot([p[x] / scale for p in front], [p["ppl"] for p in front], "-", color="tab:red", label="Pareto frontier")
        labels: dict[tuple, list[str]] = {}  # one label per place: points with equal x and ppl share it
        for p in pts:
            labels.setdefault((round(p[x] / scale, 3), round(p["ppl"], 2)), []).append(p["key"])
        rank: dict[float, int] = {}  # labels at one x alternate above / below their marker (close ppls)
        for (px, py), keys in sorted(labels.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
            j = rank[px] = rank.get(px, -1) + 1
            ax.annotate(", ".join(keys), (px, py), fontsize=7, xytext=(3, 3 if j % 2 == 0 else -10),
                        textcoords="offset points")
        ppls = [p["ppl"] for p in pts] + [doc["base_ppl"]]
        if min(ppls) > 0 and max(ppls) / min(ppls) > 10:
            ax.set_yscale("log")  # sliced and unsliced points differ by orders of magnitude
        ax.axhline(doc["base_ppl"], ls=":", color="tab:blue", label=f"source model ppl {doc['base_ppl']:.2f}")
        ax.set_xlabel(label)
        ax.set_ylabel(f"WikiText-2 ppl (first {pts[0]['windows'] if pts else '?'} windows)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return png_bytes(fig, dpi=110)


def print_table(doc: dict) -> None:
    from rich.table import Table

    from andactl.consoles import encodable, stdout_console

    t = Table(title=f"sweep ({len(doc['points'])} points, {doc['reused_points']} reused; source ppl {doc['base_ppl']:.3f})")
    for col in ("point", "tuple", "MiB", "x FP16", "energy", "BOPs", "ppl", encodable("Δppl", "ppl change"), "frontier", "s"):
        t.add_column(col, justify="left" if col in ("point", "tuple", "frontier") else "right")
    for p in sorted(doc["points"], key=lambda p: p["bytes"]):
        mark = ",".join(n for n, f in (("bytes", p["frontier_bytes"]), ("energy", p["frontier_energy"])) if f)
        secs = sum(v for k, v in p["seconds"].items() if not k.endswith("_shared"))
        t.add_row(p["key"] + (encodable(" ← best", " <- best") if p["key"] == doc["best"] else ""), str(p["tuple"]), f"{p['bytes'] / 2**20:.2f}",
                  f"{p.get('ratio_vs_dense_fp16', float('nan')):.3f}", f"{p['energy']:.4g}", f"{p['bops']:.4g}",
                  f"{p['ppl']:.3f}", f"{100 * p['ppl_increase']:+.2f}%", mark, f"{secs:.0f}")
    stdout_console().print(t)
