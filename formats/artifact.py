"""andactl artifacts: a directory a person can read.

    config.json       HF config of the base architecture with "model_type": "andactl", the "andactl"
                      section (format version, typed structural records, provenance) and the
                      "quantization_config" describing the packed modules (formats/records.py,
                      formats/quant_config.py; read by formats/reader.py)
    model.safetensors weights (sliced weights, shortcut matrices, packed INT4 weights + scales)
    tokenizer files   as the tokenizer's save_pretrained writes them
    recipe.yaml       the resolved recipe that produced the artifact
    report.json       per-pass results (timings, memory, sensitivity, search trace, eval)

Writes go through formats/output_dir.py: a temporary sibling directory swapped into place only
when complete, so a failure, Ctrl-C or SIGTERM never leaves a half-written artifact, and
--overwrite only ever replaces an andactl artifact.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from andactl.errors import ArtifactError
from andactl.formats import quant_config
from andactl.formats.reader import WEIGHTS, read_config, read_records  # noqa: F401  (re-exported)
from andactl.formats.records import FORMAT_VERSION, MODEL_TYPE, SECTION, ArtifactRecords  # noqa: F401

QUANT_METHOD = quant_config.QUANT_METHOD


def is_artifact(path: str | Path) -> bool:
    path = Path(path)
    if not (path / "config.json").is_file():
        return False
    try:
        return SECTION in read_config(path)
    except ArtifactError:
        return False


def _unique_state(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """State dict without aliases of shared tensors (tied weights); returns (tensors, alias->name)."""
    seen: dict[tuple, str] = {}
    tensors, aliases = {}, {}
    for name, t in model.state_dict().items():
        if t.device.type == "meta":  # a streamed layer's tensor (never tied): written from the store
            tensors[name] = t
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().contiguous().cpu()
    return tensors, aliases


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of the model's float tensors (its first float parameter's or buffer's that is not
    a quantization scale)."""
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not name.endswith("weight_scale"):
            return t.dtype
    return torch.float32


def artifact_config(model: torch.nn.Module, meta: dict, records: ArtifactRecords | None,
                    aliases: dict[str, str], stored: torch.dtype | None = None) -> dict:
    """config.json of an artifact: the base HF config with ``model_type: andactl``, the ``andactl``
    section (records + ``meta``) and the ``quantization_config`` of the packed modules."""
    config = model.config.to_dict()
    for key in ("quantization_config", SECTION):
        config.pop(key, None)
    base_type = config["model_type"]
    records = records or ArtifactRecords(base_type)
    records.base_model_type = base_type
    records.dtype = str(stored or model_dtype(model)).replace("torch.", "")
    config["model_type"] = MODEL_TYPE
    config[SECTION] = {**records.to_section(), **meta, "tied_aliases": aliases}
    config["quantization_config"] = quant_config.build(records.packed)
    return config


def save_artifact(out_dir: str | Path, model: torch.nn.Module, tokenizer, meta: dict,
                  recipe: dict | list | None = None, report: dict | None = None,
                  records: ArtifactRecords | None = None, overwrite: bool = False,
                  extra_files: dict[str, bytes] | None = None, storage_dtype: str | None = None,
                  shortcuts: str = "float", store=None) -> Path:
    """Writes an artifact to ``out_dir`` atomically and returns its path (``extra_files``: name ->
    bytes, e.g. plots; ``records``: the structural records, default an unmodified model;
    ``storage_dtype``: bf16|fp16|fp32 for every float tensor but quantization scales
    (formats/storage.py), None: the model's own dtype; ``shortcuts``: ``float`` (the storage dtype)
    or ``int8`` (group-wise INT8 SliceGPT shortcut matrices, dequantized on load); ``store``: where
    a streamed run's decoder layers are (their tensors are ``meta`` in ``model`` and written one
    layer at a time from ``store.tensor(name)``; andactl/models/layer_store.py), None: every tensor
    is in ``model``).

    See formats/output_dir.py for what ``out_dir`` may be and what ``overwrite`` replaces.
    """
    from andactl.formats.output_dir import pause, staged_output
    from andactl.formats.safetensors_stream import save_streaming

    with staged_output(out_dir, overwrite) as tmp:
        from andactl.formats.storage import (STORAGE_DTYPES, int8_shortcut_base, int8_shortcut_part, parse_shortcut_storage,
                                            shortcuts_to_int8, to_storage)

        from andactl.formats.int4_storage import compact

        originals, aliases = _unique_state(model)
        packed = {name: (int(model.get_submodule(name).in_features), spec.group_size)
                  for name, spec in (records.packed if records is not None else {}).items()}
        planned = compact(originals, packed)  # trimmed INT4 codes, float16 scales (bit-exact on load)
        stored = model_dtype(model)
        kept: list[str] = []
        if parse_shortcut_storage(shortcuts) == "int8":
            planned = shortcuts_to_int8(planned)
        tensors = planned
        if storage_dtype is not None:  # the cast of each tensor happens when it is written (fetch)
            tensors, kept = to_storage(planned, storage_dtype, getattr(store, "absmax", None), convert=False)
            stored = STORAGE_DTYPES[storage_dtype]
        meta = {**meta, "storage_dtype": storage_dtype or str(stored).replace("torch.", ""), "storage_fp32_tensors": kept,
                "shortcut_storage": shortcuts}
        config = artifact_config(model, meta, records, aliases, stored)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=False, default=str) + "\n")
        # one metadata key: the header must be byte-identical across identical runs
        def fetch(name: str, t: torch.Tensor) -> torch.Tensor:
            """The bytes of one planned tensor: from the model, or a streamed layer's from the store
            (trimmed to the planned width and cast to the planned dtype, exactly like ``compact``)."""
            src = planned[name]
            if src.device.type == "meta":
                if store is None:
                    raise ArtifactError(f"tensor '{name}' is not materialised and the run has no layer store")
                base = int8_shortcut_base(name) if shortcuts == "int8" else None
                if base is not None:  # a streamed layer's INT8 shortcut: quantized from the spilled value
                    return int8_shortcut_part(name, store.tensor(base)).to(t.dtype).contiguous()
                src = store.tensor(name)
                if src.dim() == 2 and src.shape[1] > t.shape[1]:  # INT4 codes trimmed to the real K
                    src = src[:, : t.shape[1]]
                if src.dtype == torch.float32 and t.dtype == torch.float16 and name.endswith(".weight_scale") \
                        and not torch.equal(src.to(torch.float16).float(), src):
                    raise ArtifactError(f"tensor '{name}': float32 scales are not exact in float16")
            return src.to(t.dtype).contiguous()

        save_streaming(tensors, tmp / WEIGHTS, metadata={"format": "pt"}, fetch=fetch)
        del tensors, originals, planned
        if store is not None:
            store.release()
        pause("weights_written")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe if recipe is not None else [], sort_keys=False))
        (tmp / "report.json").write_text(json.dumps(report or {}, indent=2, default=str) + "\n")
        for name, data in (extra_files or {}).items():
            (tmp / Path(name).name).write_bytes(data)
    return Path(out_dir).expanduser().resolve()


def artifact_meta(path: Path, config: dict | None = None) -> dict:
    """The "andactl" section of an artifact, after the records were validated (version first)."""
    config = config if config is not None else read_config(path)
    read_records(config, path)
    return config[SECTION]
