"""The one-time VML warm-up (pytorch#188792): it covers torch's MKL-routed unary functions, runs
them single-threaded in float32 and float64, and every model loader runs it before any weights."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_model
from tiny_tokenizer import char_tokenizer

import andactl.models.artifact_loader as artifact_loader
import andactl.models.loading as loading
from andactl.formats.artifact import save_artifact
from andactl.models.vector_math_warmup import VML_FUNCTIONS, warm_vector_math

GRAIN = 2048  # torch's parallel grain for these unary kernels: fewer elements run in the calling thread


def test_covers_every_function_torch_routes_to_mkl_vml():
    header = Path(torch.__file__).parent / "include" / "ATen" / "cpu" / "vml.h"
    if not header.is_file():
        pytest.skip(f"this torch build ships no {header}")
    active = {m.group(1) for line in header.read_text().splitlines()
              if (m := re.match(r"\s*IMPLEMENT_VML_MKL\((\w+),", line))}
    assert active, "no IMPLEMENT_VML_MKL lines parsed"
    assert active == set(VML_FUNCTIONS)


def test_calls_each_function_in_both_precisions_in_this_thread(monkeypatch):
    calls = []
    for name in VML_FUNCTIONS:
        orig = getattr(torch, name)

        def rec(x, *a, _name=name, _orig=orig, **kw):
            calls.append((_name, x.dtype, x.numel(), threading.get_ident()))
            return _orig(x, *a, **kw)

        monkeypatch.setattr(torch, name, rec)
    warm_vector_math.__wrapped__()
    assert {(n, d) for n, d, _, _ in calls} == {(n, d) for n in VML_FUNCTIONS for d in (torch.float32, torch.float64)}
    assert all(0 < k < GRAIN for _, _, k, _ in calls)
    assert {t for *_, t in calls} == {threading.get_ident()}


def test_loaders_warm_up_before_reading_weights(monkeypatch, tmp_path, tiny_hf_dir):
    order = []
    monkeypatch.setattr(loading, "warm_vector_math", lambda: order.append("warm"))
    monkeypatch.setattr(artifact_loader, "warm_vector_math", lambda: order.append("warm"))
    orig_pretrained, orig_read = loading._from_pretrained, artifact_loader.read_artifact
    monkeypatch.setattr(loading, "_from_pretrained",
                        lambda *a, **k: (order.append("hf"), orig_pretrained(*a, **k))[1])
    monkeypatch.setattr(artifact_loader, "read_artifact",
                        lambda *a, **k: (order.append("artifact"), orig_read(*a, **k))[1])
    loading.load_model(str(tiny_hf_dir))
    assert order == ["warm", "hf"]
    model, _ = tiny_model("llama")
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), {"base_model": "tiny"}, recipe=[], report={})
    order.clear()
    artifact_loader.load_artifact(out)
    assert order == ["warm", "artifact"]


def test_from_pretrained_of_an_artifact_warms_up(monkeypatch, tmp_path):
    """transformers' from_pretrained of an andactl artifact (the integration's quantizer) warms up too."""
    import andactl.models.vector_math_warmup as vmw
    from transformers import AutoModelForCausalLM

    calls = []
    monkeypatch.setattr(vmw, "warm_vector_math", lambda: calls.append("warm"))
    model, _ = tiny_model("llama")
    out = save_artifact(tmp_path / "a", model, char_tokenizer(), {"base_model": "tiny"}, recipe=[], report={})
    AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert calls == ["warm"]
