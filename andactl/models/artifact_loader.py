"""Rebuilds a model from an artifact: HF config -> fresh modules -> structure records replayed ->
shapes validated against the stored tensors -> weights loaded."""
from __future__ import annotations

from pathlib import Path

import torch

from andactl.errors import ArtifactError
from andactl.formats import artifact as fmt


def build_hf_config(config: dict):
    """HF config object from a config.json dict, ignoring andactl's own sections."""
    from transformers import CONFIG_MAPPING

    cfg = {k: v for k, v in config.items() if k not in (fmt.SECTION, "quantization_config")}
    model_type = cfg.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ArtifactError(f"config.json names unknown model_type {model_type!r}")
    return CONFIG_MAPPING[model_type].from_dict(cfg)


def build_model(config: dict, meta: dict, dtype: torch.dtype):
    """Fresh model whose module tree matches the artifact (weights are placeholders)."""
    from transformers import AutoModelForCausalLM

    from andactl.models.adapters import get_adapter
    from andactl.passbase import get_pass

    hf_config = build_hf_config(config)
    model = AutoModelForCausalLM.from_config(hf_config, dtype=dtype)
    adapter = get_adapter(model)
    for record in meta.get("structure", []):
        get_pass(record["pass"]).rebuild(model, adapter, record)
    return model


def load_artifact(path: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer, meta) of the artifact at ``path``; ArtifactError on any inconsistency."""
    from transformers import AutoTokenizer

    path = Path(path)
    config = fmt.read_config(path)
    meta = fmt.artifact_meta(path, config)
    shapes = fmt.tensor_shapes(path)
    model = build_model(config, meta, dtype)
    aliases = meta.get("tied_aliases", {})
    fmt.validate_shapes(model, shapes, aliases, path)
    fmt.load_state(model, path, aliases)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise ArtifactError(f"{path}: tokenizer files missing or unreadable ({type(err).__name__})") from err
    return model.eval(), tokenizer, meta
