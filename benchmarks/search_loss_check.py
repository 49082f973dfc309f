"""Does a search loss predict WikiText-2? For fixed mantissa tuples on SmolLM2-135M W4 GPTQ: the
calibration ppl loss, the KL loss (docs/SEARCH.md) and the WikiText-2 ppl increase over W4A16.
Results are written after every step (the run may be cut short by a time limit).

    python benchmarks/search_loss_check.py --tuples 7,5,7,7 8,8,8,8 --windows 8 --out runs/loss_check.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from andactl.data.calibration import CalibrationConfig
from andactl.data.datasets import load_text_rows, resolve_data_dir
from andactl.evaluation.perplexity import perplexity
from andactl.manager import PassManager
from andactl.models.loading import load_model
from andactl.passes.anda_fakequant import KLEvaluator, LossEvaluator, anda_activations, tuple_bits
from andactl.pipeline import RunOptions, make_context


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="smollm2-135m")
    ap.add_argument("--method", default="gptq")
    ap.add_argument("--tuples", nargs="+", default=["7,5,7,7", "8,8,8,8"])
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    data_dir = resolve_data_dir(None)
    rows = load_text_rows("wikitext2", "test", data_dir)
    cal = CalibrationConfig(dataset="alpaca", samples=8, seqlen=512, batch_size=4)
    out = {"source": a.source, "method": a.method, "windows": a.windows, "calibration": cal.to_dict(), "tuples": {}}

    def save():
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2) + "\n")

    loaded = load_model(a.source)
    ctx = make_context(loaded, RunOptions(model=a.source, output=None, data_dir=data_dir, quiet=True), cal)
    t0 = time.perf_counter()
    PassManager.from_recipe([{"pass": "quantize_weights", "method": a.method}]).run(ctx)
    out["weights_seconds"] = round(time.perf_counter() - t0, 1)
    out["w4a16_ppl"] = perplexity(ctx.model, ctx.tokenizer, rows, seqlen=2048, limit=a.windows).ppl
    save()
    ppl_loss, kl_loss = LossEvaluator(ctx), KLEvaluator(ctx)
    for spec in a.tuples:
        t = [int(v) for v in spec.split(",")]
        t0 = time.perf_counter()
        entry = {"ppl_loss": ppl_loss(tuple_bits(t)), "kl_loss": kl_loss(tuple_bits(t))}
        entry["loss_seconds"] = round(time.perf_counter() - t0, 1)
        out["tuples"][spec] = entry
        save()
        with anda_activations(ctx.model, ctx.adapter, tuple_bits(t)):
            p = perplexity(ctx.model, ctx.tokenizer, rows, seqlen=2048, limit=a.windows).ppl
        entry["wikitext2_ppl"] = p
        entry["wikitext2_increase"] = p / out["w4a16_ppl"] - 1
        save()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
