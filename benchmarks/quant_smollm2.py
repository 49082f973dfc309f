"""W4 and W4 + Anda on SmolLM2-135M (dense or a sliced artifact), in one process.

GPTQ runs once per source model; the search is then run at each tolerance on the same INT4
weights (what `andactl quantize` would recompute each time). Activations are fake-quantized with
the searched tuple, which is numerically the packed AndaLinear reference backend.

    python benchmarks/quant_smollm2.py --source smollm2-135m --windows 20 --out runs/quant_dense.json
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from andactl.data.calibration import CalibrationConfig
from andactl.data.datasets import load_text_rows, resolve_data_dir
from andactl.evaluation.perplexity import perplexity
from andactl.formats import cost_models
from andactl.manager import PassManager
from andactl.models.loading import load_model
from andactl.passes.anda_fakequant import anda_activations
from andactl.pipeline import RunOptions, make_context

PAPER = "paper, LLaMA-7B W4 group 128 at 1%: [7, 6, 6, 6], 2.56x BOPs"


def ppl(model, tok, rows, windows):
    return perplexity(model, tok, rows, seqlen=2048, limit=windows).ppl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="smollm2-135m")
    ap.add_argument("--windows", type=int, default=20)
    ap.add_argument("--tolerances", default="0.001,0.01")
    ap.add_argument("--budget", default="bops")
    ap.add_argument("--cal-samples", type=int, default=8)
    ap.add_argument("--cal-seqlen", type=int, default=512)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                    help="also evaluate FP and W4 RTN/GPTQ perplexities (off: GPTQ + search only)")
    ap.add_argument("--search-loss", default="ppl", choices=["ppl", "kl"], help="the search's loss (docs/SEARCH.md)")
    ap.add_argument("--methods", default="rtn,gptq", help="weight methods evaluated as baselines (the search runs on gptq)")
    ap.add_argument("--fp", action=argparse.BooleanOptionalAction, default=True, help="evaluate the FP model too")
    ap.add_argument("--save-packed", default=None, help="write the GPTQ + Anda (last tolerance) model as a packed artifact")
    a = ap.parse_args()
    data_dir = resolve_data_dir(None)
    rows = load_text_rows("wikitext2", "test", data_dir)
    cal = CalibrationConfig(dataset="alpaca", samples=a.cal_samples, seqlen=a.cal_seqlen, batch_size=4)
    out: dict = {"search_loss": a.search_loss, "source": a.source, "windows": a.windows, "calibration": cal.to_dict(), "budget": a.budget, "paper": PAPER}

    def save():
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2) + "\n")

    base = load_model(a.source)
    if a.baselines and a.fp:
        out["fp"] = {"ppl": ppl(base.model, base.tokenizer, rows, a.windows)}
        save()
    methods = tuple(m for m in a.methods.split(",") if m != "gptq") + ("gptq",)
    for method in (methods if a.baselines else ("gptq",)):
        loaded = copy.copy(base)
        loaded.model = copy.deepcopy(base.model)
        from andactl.models.adapters import get_adapter

        loaded.adapter = get_adapter(loaded.model)
        ctx = make_context(loaded, RunOptions(model=a.source, output=None, data_dir=data_dir, quiet=True), cal)
        t0 = time.perf_counter()
        PassManager.from_recipe([{"pass": "quantize_weights", "method": method}]).run(ctx)
        entry = {"seconds": round(time.perf_counter() - t0, 1)}
        if a.baselines:
            entry["ppl"] = ppl(ctx.model, ctx.tokenizer, rows, a.windows)
        out[f"w4_{method}"] = entry
        save()
        if method != "gptq":
            continue
        shape = cost_models.ModelShape.from_adapter(ctx.adapter, tokens=1)
        for tol in a.tolerances.split(","):
            t0 = time.perf_counter()
            PassManager.from_recipe([{"pass": "anda_search", "tolerance": float(tol), "budget": a.budget,
                                     "loss": a.search_loss}]).run(ctx)
            search_seconds = round(time.perf_counter() - t0, 1)
            search = ctx.report["search"]
            bits = ctx.anda_bits
            with anda_activations(ctx.model, ctx.adapter, bits):
                p = ppl(ctx.model, ctx.tokenizer, rows, a.windows)
            out[f"w4_anda_{tol}"] = {
                "tuple": search["tuple"], "search_seconds": search_seconds,
                "evaluations": search["evaluations"], "calibration_loss": search["loss"], "ppl": p,
                "reduction_vs_fp16": {b: cost_models.reduction_vs(b, search["tuple"], shape) for b in cost_models.BUDGETS},
            }
            save()
        if a.save_packed:
            from andactl.pipeline import save_context

            PassManager.from_recipe([{"pass": "pack"}]).run(ctx)
            recipe = {"model": a.source, "calibration": cal.to_dict(), "passes": [
                {"pass": "quantize_weights", "method": "gptq"},
                {"pass": "anda_search", "tolerance": float(a.tolerances.split(",")[-1]), "budget": a.budget}, {"pass": "pack"}]}
            save_context(ctx, a.save_packed, recipe, overwrite=True, base_model=ctx.provenance.get("base_model", a.source))
            out["packed_artifact"] = a.save_packed
            save()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
