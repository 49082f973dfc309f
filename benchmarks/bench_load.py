"""Load time and peak RSS of opening an artifact, each load in a fresh subprocess.

    python benchmarks/bench_load.py ARTIFACT [ARTIFACT ...] [--repeats 3]

Works with any andactl version that has ``andactl.models.loading.load_model`` (so the same
script measures the code before and after a change: run it from each checkout). Per load it
reports the seconds from the call to a ready model and the process's peak RSS increase over the
RSS after imports (``ru_maxrss``, Linux KiB), plus one forward on 8 tokens as a sanity check.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from andactl.evaluation.throughput import cpu_name  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import torch
import andactl
from andactl.models.loading import load_model
import transformers, safetensors  # imports outside the measurement
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
lm = load_model(sys.argv[1])
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    y = lm.model(torch.arange(8).unsqueeze(0)).logits
print(json.dumps({"seconds": dt, "peak_rss_mib": (peak - base) / 1024, "rss_after_imports_mib": base / 1024,
                  "logit_sum": float(y.double().sum())}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("artifacts", nargs="+")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f" {f}" in flags]
    print(f"# CPU: {cpu_name()} ({', '.join(isa)}); python {platform.python_version()}", file=sys.stderr)
    for path in a.artifacts:
        runs = []
        for _ in range(a.repeats):
            res = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(f"load of {path} failed: {res.stderr.strip().splitlines()[-1]}")
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["seconds"])
        print(json.dumps({"artifact": path, "repeats": a.repeats, "best_seconds": round(best["seconds"], 3),
                          "median_seconds": round(sorted(r["seconds"] for r in runs)[len(runs) // 2], 3),
                          "peak_rss_increase_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
                          "logit_sum": best["logit_sum"]}))


if __name__ == "__main__":
    main()
