"""WikiText-2 perplexity of SmolLM2-135M with all four Anda activation types at a uniform M.

The model keeps its float weights; only the inputs of q/k/v, o, gate/up and down are
fake-quantized (formats.anda.quantize, truncation). This is the model's sensitivity baseline
for the search. Also reports the fake-quant overhead against the unquantized run.

    python benchmarks/anda_uniform_ppl.py --windows 8 --bits 4-13 --out runs/anda_uniform.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from andactl.data.datasets import load_text_rows, resolve_data_dir
from andactl.evaluation.perplexity import perplexity
from andactl.models.loading import load_model
from andactl.passes.anda_fakequant import anda_activations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--bits", default="4-13")
    ap.add_argument("--rounding", default="truncate")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    lo, hi = (int(v) for v in a.bits.split("-"))
    lm = load_model(a.model)
    rows = load_text_rows("wikitext2", "test", resolve_data_dir(None))
    base = perplexity(lm.model, lm.tokenizer, rows, seqlen=a.seqlen, limit=a.windows)
    results = {"model": a.model, "windows": base.windows, "seqlen": a.seqlen, "rounding": a.rounding,
               "fp32": {"ppl": base.ppl, "seconds": base.seconds}, "uniform": {}}
    print(f"| M | ppl | ppl/ppl_fp32 - 1 | seconds |\n|---|---|---|---|\n| fp32 | {base.ppl:.3f} | 0 | {base.seconds:.1f} |", flush=True)
    for m in range(lo, hi + 1):
        t0 = time.perf_counter()
        with anda_activations(lm.model, lm.adapter, {k: m for k in ("qkv", "o", "u", "d")}, a.rounding):
            res = perplexity(lm.model, lm.tokenizer, rows, seqlen=a.seqlen, limit=a.windows)
        results["uniform"][m] = {"ppl": res.ppl, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"| {m} | {res.ppl:.3f} | {res.ppl / base.ppl - 1:+.4f} | {res.seconds:.1f} |", flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
