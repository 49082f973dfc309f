"""Perplexity cost of storing INT4 scales as float16 (rounded up, formats.int4.fp16_scale_up) on
SmolLM2: RTN W4 (symmetric, group 128) fake-quantized in memory, head and embeddings float,
WikiText-2 first N windows of 2048, float32.

    python benchmarks/int4_scale_rounding.py --windows 8      # prints both variants
"""
from __future__ import annotations

import argparse

import torch

from andactl.data.datasets import load_text_rows, resolve_data_dir
from andactl.evaluation.perplexity import perplexity
from andactl.formats import int4
from andactl.models.loading import load_model


def rtn_ppl(rows, windows: int) -> float:
    base = load_model("smollm2-135m")
    with torch.no_grad():
        for mod in base.model.modules():
            if isinstance(mod, torch.nn.Linear) and mod is not base.model.get_output_embeddings():
                q = int4.quantize_weight_rtn(mod.weight.data, 128, True)
                mod.weight.data.copy_(q.dequantize().to(mod.weight.dtype))
    return perplexity(base.model, base.tokenizer, rows, seqlen=2048, limit=windows).ppl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=8)
    a = ap.parse_args()
    rows = load_text_rows("wikitext2", "test", resolve_data_dir(None))
    print(f"fp16 scales (rounded up): {rtn_ppl(rows, a.windows):.3f}", flush=True)
    rounded_up = int4.fp16_scale_up
    int4.fp16_scale_up = lambda s: s.float()  # float32 scales: the pre-compact-layout quantizer
    try:
        print(f"float32 scales:           {rtn_ppl(rows, a.windows):.3f}", flush=True)
    finally:
        int4.fp16_scale_up = rounded_up


if __name__ == "__main__":
    main()
