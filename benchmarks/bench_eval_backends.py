"""End-to-end perplexity wall time of a packed model: reference vs C++ kernel backend, one run.

    .venv/bin/python benchmarks/bench_eval_backends.py [--windows 2] [--threads 2] [--format json]

Builds a packed SmolLM2-135M in-process (quantize_weights rtn + set_anda_bits [6,6,6,6] + pack on
a PassContext), then times ``andactl.evaluation.perplexity.perplexity`` on the first N wikitext2
test windows of 2048 tokens with every AndaLinear on backend "reference" (fake-quant float32
F.linear) and "cpp" (anda_pack + prepacked anda_gemm). Prints seconds per window for each, the
speedup and both perplexities. Each AndaLinear agrees across backends to float32 rounding (same
error vs a float64 evaluation), but the truncating Anda quantizer of every next layer turns those
last-bit differences into occasional one-quantum flips, so the perplexities agree only to ~1e-3..1e-2
relative at M = 6 (computing the reference's F.linear in float64 alone moves it by ~1e-3).
Data: --data-dir, else $ANDACTL_DATA_DIR, else /work/shared/data.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from andactl.data.calibration import CalibrationConfig
from andactl.data.datasets import load_text_rows
from andactl.evaluation.perplexity import perplexity
from andactl.kernels import backend
from andactl.manager import PassManager
from andactl.models.loading import load_model
from andactl.pipeline import RunOptions, make_context

RECIPE = [{"pass": "quantize_weights", "method": "rtn"}, {"pass": "set_anda_bits", "bits": [6, 6, 6, 6]},
          {"pass": "pack"}]


def packed_model(model: str, data_dir: Path):
    """(model, tokenizer, seconds) of ``model`` after RECIPE, built in this process."""
    t0 = time.perf_counter()
    loaded = load_model(model, "float32", "cpu")
    ctx = make_context(loaded, RunOptions(model=model, output=None, data_dir=data_dir, quiet=True),
                       CalibrationConfig())
    manager = PassManager.from_recipe(RECIPE)
    manager.check(ctx.provided)
    manager.run(ctx)
    return ctx.model.eval(), ctx.tokenizer, time.perf_counter() - t0


def run(model_name: str, windows: int, data_dir: Path) -> dict:
    """Per backend: seconds per window, perplexity and the backend's resolution."""
    model, tok, build_s = packed_model(model_name, data_dir)
    rows = load_text_rows("wikitext2", "test", data_dir)
    out: dict = {"model": model_name, "windows": windows, "build_seconds": round(build_s, 2), "backends": {}}
    for name in ("reference", "cpp"):
        info = backend.set_backend(model, name, "cpu")
        with torch.no_grad():
            res = perplexity(model, tok, rows, seqlen=2048, limit=windows)
        out["backends"][name] = {"resolved": info.name, "isa": info.isa, "ppl": res.ppl,
                                 "seconds": res.seconds, "seconds_per_window": res.seconds / res.windows}
    ref, cpp = out["backends"]["reference"], out["backends"]["cpp"]
    out["speedup"] = ref["seconds"] / cpp["seconds"]
    out["ppl_rel_diff"] = abs(cpp["ppl"] - ref["ppl"]) / ref["ppl"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--windows", type=int, default=2, help="wikitext2 test windows of 2048 tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--format", choices=("table", "json"), default="table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data_dir = args.data_dir or Path(os.environ.get("ANDACTL_DATA_DIR", "/work/shared/data"))
    res = run(args.model, args.windows, data_dir)
    res["threads"] = args.threads
    res["loadavg"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    if args.format == "json":
        print(json.dumps(res, indent=1))
        return
    print(f"# {res['model']}, W4 rtn + Anda [6,6,6,6], {res['windows']} wikitext2 windows of 2048, "
          f"threads={res['threads']}, loadavg {res['loadavg']}, packed model built in {res['build_seconds']} s")
    print("| backend | s / window | perplexity |")
    print("|---|---|---|")
    for name, r in res["backends"].items():
        print(f"| {name} ({r['resolved']}{', ' + r['isa'] if r['isa'] else ''}) | {r['seconds_per_window']:.2f} | "
              f"{r['ppl']:.6f} |")
    print(f"speedup cpp vs reference: {res['speedup']:.2f}x; perplexity relative difference {res['ppl_rel_diff']:.2e}")


if __name__ == "__main__":
    main()
