"""Peak RSS and wall time of ``andactl slice`` on random-initialised Llama configs of growing size,
beside the ``--dry-run`` estimate, plus a 1- vs 2-process torchrun comparison.

Each model is written once (bf16 safetensors, the real SmolLM2 tokenizer, random weights) to
``--workdir``; each measured command runs in its own process under ``/usr/bin/time`` (max RSS).
Run it under the shared lock, smallest size first:

    flock /work/heavy.lock python benchmarks/memory_scaling.py --sizes 0.1,0.5 --torchrun 0.1 \
        --workdir /work/bench-i12 --out benchmarks/results/memory_scaling.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# Llama shapes (SmolLM2 vocabulary 49152, tied embeddings): name -> config overrides
SIZES = {
    "0.1": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3),
    "0.5": dict(hidden_size=1280, intermediate_size=3584, num_hidden_layers=24, num_attention_heads=20, num_key_value_heads=5),
    "1": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8),
    "3": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8),
    "7": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32),
}
SLICE_ARGS = ["--ratio", "0.25", "--cal-samples", "8", "--cal-seqlen", "256", "--cal-batch-size", "8"]
QUANTIZE_ARGS = ["--weight-method", "gptq", "--bits", "7", "7", "7", "7", "--cal-samples", "8", "--cal-seqlen", "256",
                 "--cal-batch-size", "8"]


def make_model(size: str, workdir: Path) -> Path:
    """The random bf16 model of ``size`` in ``workdir`` (written once)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from andactl.models.loading import alias_file

    path = workdir / f"llama-{size}b"
    if (path / "model.safetensors").is_file():
        return path
    gguf = alias_file("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    cfg = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True, rms_norm_eps=1e-5,
                      initializer_range=0.02, **SIZES[size])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def timed(cmd: list[str], env: dict) -> dict:
    """Runs ``cmd`` under /usr/bin/time; wall seconds, max RSS (GB) and stdout."""
    t0 = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    rss = max(int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("MAXRSS_KB"))
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(rss * 1024 / 1e9, 3), "stdout": res.stdout}


def weights_equal(a: Path, b: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    diff = max(float((x[k].double() - y[k].double()).abs().max()) for k in x)
    same = sum(int(torch.equal(x[k], y[k])) for k in x)
    return {"same_keys": x.keys() == y.keys(), "max_abs_diff": diff, "identical_tensors": f"{same}/{len(x)}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0.1,0.5")
    ap.add_argument("--torchrun", default="0.1", help="sizes to also run with 2 torchrun processes ('' for none)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/andactl-memory"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/memory_scaling.json"))
    ap.add_argument("--stream", action="store_true", help="layer-wise streaming (--stream) instead of --no-stream")
    ap.add_argument("--command", choices=["slice", "quantize"], default="slice")
    ap.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16",
                    help="run dtype (the source stays bf16); float32 is ~3x faster where the CPU lacks native bf16")
    ap.add_argument("--plot", nargs="+", type=Path, metavar="JSON",
                    help="only draw docs-style PNG (--out, .png) from earlier result files (streamed and in-memory)")
    args = ap.parse_args()
    if args.plot:
        plot_files(args.plot, args.out.with_suffix(".png"))
        return
    cmd_args = [args.command, *(SLICE_ARGS if args.command == "slice" else QUANTIZE_ARGS), "--dtype", args.dtype]
    tag = ("-stream" if args.stream else "") + ("" if args.dtype == "bfloat16" else "-fp32")
    mode = ["--stream" if args.stream else "--no-stream"]
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    py = [sys.executable, "-m", "andactl"]
    rows = []
    for size in args.sizes.split(","):
        src = make_model(size, args.workdir)
        out = args.workdir / f"{args.command}d-{size}b{tag}"
        dry = json.loads(subprocess.run([*py, *cmd_args, str(src), *mode, "-o", str(out), "--dry-run", "--format", "json"],
                                        capture_output=True, text=True, env=env, check=True).stdout)
        run = timed([*py, "-q", *cmd_args, str(src), *mode, "-o", str(out), "--overwrite", "--format", "json"], env)
        summary = json.loads(run.pop("stdout"))
        bf16_gb = dry["parameters"] * 2 / 1e9
        row = {"size": size, "command": args.command, "streamed": args.stream, "dtype": args.dtype,
               "parameters": dry["parameters"], "bf16_gb": round(bf16_gb, 3), **run,
               "rss_over_bf16": round(run["peak_rss_gb"] / bf16_gb, 2),
               "dry_run_peak_gb": dry["peak_host_ram_gb"], "dry_run_seconds": dry["seconds"],
               "per_pass": [{"pass": p["pass"], "seconds": p.get("seconds"), "peak_rss_mb": p.get("peak_rss_mb")}
                            for p in summary["passes"]],
               "dry_run_per_pass": dry["passes"]}
        if size in args.torchrun.split(","):
            out2 = args.workdir / f"{args.command}d-{size}b{tag}-2proc"
            tr = timed([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "andactl", "-q",
                        *cmd_args, str(src), *mode, "-o", str(out2), "--overwrite", "--format", "json"], env)
            tr.pop("stdout")
            row["torchrun_2proc"] = {**tr, "vs_1proc": weights_equal(out, out2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    info = {"cpu": platform.processor() or platform.machine(), "load_avg": os.getloadavg(), "cores": os.cpu_count(),
            "command": " ".join(sys.argv), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=2) + "\n")
    try:
        plot(rows, args.out.with_suffix(".png"))
    except ImportError:
        pass


def plot(rows: list[dict], path: Path) -> None:
    """Peak RSS measured and estimated against parameter count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = [r["parameters"] / 1e9 for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(p, [r["peak_rss_gb"] for r in rows], "o-", label="measured peak RSS")
    ax.plot(p, [r["dry_run_peak_gb"] for r in rows], "s--", label="--dry-run estimate")
    ax.plot(p, [r["bf16_gb"] for r in rows], ":", label="model bf16 bytes")
    ax.set_xlabel("parameters (B)")
    ax.set_ylabel("GB")
    ax.set_title("andactl slice 25%, 8x256 alpaca, bf16")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_files(files: list[Path], path: Path) -> None:
    """Peak RSS (measured, solid; --dry-run estimate, dashed) against parameters, one line per
    (command, streamed or in memory) found in ``files``, with the issue's target for >= 1B models."""
    from andactl.plotting import png_bytes, subplots

    series: dict[tuple, list[dict]] = {}
    for f in files:
        for r in json.loads(f.read_text())["rows"]:
            series.setdefault((r.get("command", "slice"), bool(r.get("streamed")), r.get("dtype", "bfloat16")), []).append(r)
    fig, ax = subplots(figsize=(6, 4))
    for (command, streamed, dtype), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["parameters"])
        p = [r["parameters"] / 1e9 for r in rows]
        label = f"{command} {'streamed' if streamed else 'in memory'} {'bf16' if dtype == 'bfloat16' else 'fp32'}"
        line, = ax.plot(p, [r["peak_rss_gb"] for r in rows], "o-", label=f"{label}: measured")
        ax.plot(p, [r["dry_run_peak_gb"] for r in rows], "s--", color=line.get_color(), label=f"{label}: --dry-run")
    allp = sorted({r["parameters"] for rows in series.values() for r in rows})
    ax.plot([q / 1e9 for q in allp], [0.35 * 2 * q / 1e9 + 1.5 for q in allp], ":", color="k",
            label="target 0.35 x bf16 + 1.5 GB (+ calibration)")
    ax.set_xlabel("parameters (B), random Llama, bf16")
    ax.set_ylabel("peak RSS (GB)")
    ax.set_title("slice 25% / quantize GPTQ 7777, 8x256 alpaca", fontsize=10)
    ax.legend(fontsize=7)
    path.write_bytes(png_bytes(fig, dpi=120))


if __name__ == "__main__":
    main()
