"""What compact storage costs in perplexity on SmolLM2-135M: storage dtype round trips (fp16, bf16)
and INT8/INT4 head + embedding tables, each against the float32 model on the same windows.

    python benchmarks/tables_smollm2.py --source smollm2-135m --windows 8 --out runs/tables.json
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from andactl.context import PassContext
from andactl.data.datasets import load_text_rows, resolve_data_dir
from andactl.evaluation.perplexity import perplexity
from andactl.formats.storage import to_storage
from andactl.models.loading import load_model
from andactl.passes.quantize_tables import QuantizeTables, QuantizeTablesConfig

VARIANTS = [("fp32", "none", "none"), ("fp16", "none", "none"), ("bf16", "none", "none"),
            ("fp16", "int8", "int8"), ("fp16", "int4", "int4"), ("fp16", "int8", "int4"), ("fp16", "int4", "int8")]


def variant(loaded, storage: str, head: str, emb: str):
    """A copy of the model with the tables quantized and every float tensor round-tripped through
    the storage dtype (what saving and loading the artifact does)."""
    model = copy.deepcopy(loaded.model)
    if head != "none" or emb != "none":
        ctx = PassContext(model=model, adapter=loaded.adapter, tokenizer=loaded.tokenizer)
        QuantizeTables(QuantizeTablesConfig(head=head, embeddings=emb)).run(ctx)
    state, _ = to_storage(model.state_dict(), storage)
    model.load_state_dict(state, strict=True)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="smollm2-135m")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    loaded = load_model(args.source)
    rows = load_text_rows("wikitext2", "test", resolve_data_dir(None))
    results = []
    for storage, head, emb in VARIANTS:
        t0 = time.perf_counter()
        m = variant(loaded, storage, head, emb)
        p = perplexity(m, loaded.tokenizer, rows, seqlen=2048, limit=args.windows).ppl
        results.append({"storage": storage, "head": head, "embeddings": emb, "ppl": p, "seconds": round(time.perf_counter() - t0, 1)})
        base = results[0]["ppl"]
        print(f"storage {storage} head {head} embeddings {emb}: ppl {p:.4f} ({100 * (p / base - 1):+.3f}%)", flush=True)
        del m
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"source": args.source, "windows": args.windows, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
