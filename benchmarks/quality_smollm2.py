"""Quality/cost sweep on SmolLM2-135M with the CLI itself (the commands a user types).

Each step runs ``andactl ...`` as a subprocess, stores its JSON under OUT/ and is skipped when
that JSON already exists (the sweep is resumable). Prints a markdown summary at the end.

    python benchmarks/quality_smollm2.py --out runs/quality --windows 20 --zero-shot-limit 300
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ANDACTL = [sys.executable, "-m", "andactl"]


def run(out: Path, name: str, args: list[str]) -> dict:
    """Runs one andactl command (JSON on stdout) unless OUT/name.json exists; returns its JSON."""
    target = out / f"{name}.json"
    if target.is_file():
        return json.loads(target.read_text())
    t0 = time.perf_counter()
    proc = subprocess.run(ANDACTL + args + ["--format", "json"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"step {name} failed: andactl {' '.join(args)}")
    data = json.loads(proc.stdout)
    data["_command"] = "andactl " + " ".join(args)
    data["_wall_seconds"] = round(time.perf_counter() - t0, 1)
    target.write_text(json.dumps(data, indent=2) + "\n")
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {data['_wall_seconds']}s", file=sys.stderr, flush=True)
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/quality"))
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--windows", type=int, default=148, help="WikiText-2 windows of 2048 (148 = full test set)")
    ap.add_argument("--zero-shot-limit", type=int, default=0, help="0 = full piqa/arc_easy")
    ap.add_argument("--ratios", default="0.10,0.20,0.30")
    ap.add_argument("--cal-samples", type=int, default=128)
    ap.add_argument("--cal-seqlen", type=int, default=2048)
    ap.add_argument("--sweep-samples", type=int, default=32, help="calibration samples for the 10/20/30%% sweep")
    ap.add_argument("--budget", default="bops")
    ap.add_argument("--steps", default="dense,slice,quant,sweep,zeroshot", help="subset of dense,slice,quant,sweep,zeroshot")
    a = ap.parse_args()
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    steps = set(a.steps.split(","))
    wt = ["--tasks", "wikitext2", "--limit", str(a.windows)]
    zs = ["--tasks", "piqa,arc_e", "--batch_size", "16"] + (["--limit", str(a.zero_shot_limit)] if a.zero_shot_limit else [])
    arts = out / "artifacts"
    cal = ["--cal-data", "alpaca"]

    def sliced(ratio: str, samples: int) -> str:
        tag = f"slice{int(round(float(ratio) * 100)):02d}"
        run(out, f"{tag}_build", ["slice", a.model, "--ratio", ratio, *cal, "--cal-samples", str(samples),
                                  "--cal-seqlen", str(a.cal_seqlen), "-o", str(arts / tag), "--overwrite"])
        run(out, f"{tag}_wikitext2", ["eval", str(arts / tag), *wt])
        run(out, f"{tag}_inspect", ["inspect", str(arts / tag)])
        return str(arts / tag)

    def quantized(base: str, src: str, tag: str, extra: list[str]) -> str:
        run(out, f"{base}_{tag}_build", ["quantize", src, *extra, "-o", str(arts / f"{base}_{tag}"), "--overwrite"])
        run(out, f"{base}_{tag}_wikitext2", ["eval", str(arts / f"{base}_{tag}"), *wt])
        return str(arts / f"{base}_{tag}")

    if "dense" in steps:
        run(out, "dense_wikitext2", ["eval", a.model, *wt])
    s25 = sliced("0.25", a.cal_samples) if "slice" in steps else None
    if "quant" in steps:
        # W4A16 (INT4 weights, activations unquantized): the search's reference point
        quantized("dense", a.model, "w4rtn", ["--weight-method", "rtn", "--activations", "none"])
        quantized("dense", a.model, "w4gptq", ["--weight-method", "gptq", "--activations", "none"])
        for tol in ("0.001", "0.01"):
            quantized("dense", a.model, f"w4anda{tol[2:]}", ["--weight-method", "gptq", "--tolerance", tol, "--budget", a.budget])
        if s25:
            quantized("slice25", s25, "w4gptq", ["--weight-method", "gptq", "--activations", "none"])
            quantized("slice25", s25, "w4anda01", ["--weight-method", "gptq", "--tolerance", "0.01", "--budget", a.budget])
    if "sweep" in steps:
        for r in a.ratios.split(","):
            if r != "0.25":
                sliced(r, a.sweep_samples)
    if "zeroshot" in steps:
        run(out, "dense_zeroshot", ["eval", a.model, *zs])
        for name in ("slice25", "dense_w4anda01", "slice25_w4anda01"):
            if (arts / name).is_dir():
                run(out, f"{name}_zeroshot", ["eval", str(arts / name), *zs])
    print("done", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
