"""A packed tiny model gives the same perplexity with the reference and the C++ backend.

Per module the two backends agree to float32 accumulation order (tests/test_kernels_cpp.py);
through a network, a last-bit difference can move a value across a truncation boundary of the
next layer's Anda quantizer (one unit of 2^(E-15-(M-1))), so whole-model perplexities are compared
to 5e-4 relative (observed: <= 5e-5)."""
from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_calibration, tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.context import PassContext
from andactl.evaluation.perplexity import perplexity
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter

ROWS = ["The quick brown fox jumps over the lazy dog.\n", "", "Pack my box with five dozen liquor jugs.\n"] * 6


@pytest.mark.parametrize("bits", [[4, 4, 4, 4], [8, 6, 7, 5], [13, 12, 11, 16]])
def test_packed_perplexity_equal_between_backends(bits):
    from andactl.kernels import backend

    info = backend.resolve_backend("auto", torch.device("cpu"))
    if info.name != "cpp":
        pytest.skip(f"C++ extension unavailable: {info.reason}")
    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=4, seqlen=64)
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64},
                             {"pass": "set_anda_bits", "bits": bits}, {"pass": "pack"}]).run(ctx)
    results = {}
    for name in ("reference", "cpp"):
        backend.set_backend(model, name)
        results[name] = perplexity(model, ctx.tokenizer, ROWS, seqlen=64, batch_size=2).ppl
    assert results["cpp"] == pytest.approx(results["reference"], rel=5e-4)
    assert 1.0 < results["reference"] < 1e4
