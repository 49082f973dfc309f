"""andactl artifacts: a directory a person can read.

    config.json       HF config + "andactl" section (format version, structure records that rebuild
                      the module tree, provided capabilities, provenance) [+ "quantization_config"]
    model.safetensors weights (sliced weights, shortcut matrices, packed INT4 weights + scales)
    tokenizer files   as the tokenizer's save_pretrained writes them
    recipe.yaml       the resolved recipe that produced the artifact
    report.json       per-pass results (timings, memory, sensitivity, search trace, eval)

Writes are atomic: everything goes to a temporary sibling directory that is renamed into place
only when complete, so a failure or Ctrl-C never leaves a half-written artifact.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
import yaml

from andactl import FORMAT_VERSION
from andactl.errors import ArtifactError

SECTION = "andactl"
QUANT_METHOD = "andactl"
WEIGHTS = "model.safetensors"


def read_config(path: Path) -> dict:
    """config.json of a model directory as a dict; ArtifactError if missing or not JSON."""
    cfg_path = Path(path) / "config.json"
    try:
        return json.loads(cfg_path.read_text())
    except FileNotFoundError as err:
        raise ArtifactError(f"{path}: no config.json") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{cfg_path}: not valid JSON ({err})") from err


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
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().contiguous().cpu()
    return tensors, aliases


def save_artifact(out_dir: str | Path, model: torch.nn.Module, tokenizer, meta: dict,
                  recipe: dict | list | None = None, report: dict | None = None,
                  quantization_config: dict | None = None, overwrite: bool = False,
                  extra_files: dict[str, bytes] | None = None, storage_dtype: str = "fp32") -> Path:
    """Writes an artifact to ``out_dir`` atomically and returns its path (``extra_files``: name ->
    bytes, e.g. plots). Floating tensors are stored in ``storage_dtype`` (formats/storage.py).

    Refuses a non-empty existing ``out_dir`` unless ``overwrite``.
    """
    from safetensors.torch import save_file

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ArtifactError(f"output directory {out} exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        from andactl.formats.storage import to_storage

        tensors, aliases = _unique_state(model)
        tensors, kept_fp32 = to_storage(tensors, storage_dtype)
        config[SECTION] = {"format_version": FORMAT_VERSION, **meta, "tied_aliases": aliases,
                           "storage_dtype": storage_dtype, "storage_fp32_tensors": kept_fp32}
        if quantization_config is not None:
            config["quantization_config"] = {"quant_method": QUANT_METHOD, **quantization_config}
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=False, default=str) + "\n")
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt", "producer": "andactl"})
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe if recipe is not None else [], sort_keys=False))
        (tmp / "report.json").write_text(json.dumps(report or {}, indent=2, default=str) + "\n")
        for name, data in (extra_files or {}).items():
            (tmp / Path(name).name).write_bytes(data)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def artifact_meta(path: Path, config: dict | None = None) -> dict:
    """The "andactl" section of an artifact, version-checked."""
    config = config if config is not None else read_config(path)
    meta = config.get(SECTION)
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path}: config.json has no '{SECTION}' section: not an andactl artifact")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format version {version!r}; this andactl reads version {FORMAT_VERSION}")
    quant = config.get("quantization_config")
    if quant is not None and quant.get("quant_method") != QUANT_METHOD:
        raise ArtifactError(f"{path}: quantization_config.quant_method is {quant.get('quant_method')!r}, not '{QUANT_METHOD}'")
    return meta


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes in ``model.safetensors`` (header only); ArtifactError if corrupt."""
    from safetensors import safe_open

    file = path / WEIGHTS
    if not file.is_file():
        raise ArtifactError(f"{path}: {WEIGHTS} is missing")
    try:
        with safe_open(str(file), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{file}: corrupt or not a safetensors file ({str(err).splitlines()[0]})") from err


def validate_shapes(model: torch.nn.Module, shapes: dict[str, tuple[int, ...]], aliases: dict[str, str], where: Path) -> None:
    """Every stored tensor matches the rebuilt model's tensor of the same name, and every model
    tensor (except tied aliases) is stored; the error names the module."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name, shape in shapes.items():
        if name not in expected:
            raise ArtifactError(f"{where}: tensor '{name}' does not belong to the model the config describes")
        if expected[name] != shape:
            module = name.rsplit(".", 1)[0]
            raise ArtifactError(
                f"{where}: module '{module}': tensor '{name}' has shape {list(shape)}, the config implies {list(expected[name])}"
            )
    missing = [k for k in expected if k not in shapes and k not in aliases]
    if missing:
        raise ArtifactError(f"{where}: {len(missing)} tensor(s) missing, first: '{missing[0]}'")


def load_state(model: torch.nn.Module, path: Path, aliases: dict[str, str]) -> None:
    """Loads model.safetensors into ``model`` (shapes already validated); re-ties aliases."""
    from safetensors.torch import load_file

    state = load_file(str(path / WEIGHTS))
    full = model.state_dict()
    for alias, target in aliases.items():
        state[alias] = state[target]
    unexpected = set(state) - set(full)
    if unexpected:
        raise ArtifactError(f"{path}: unexpected tensors {sorted(unexpected)[:3]}")
    model.load_state_dict(state, strict=True)
    if getattr(model.config, "tie_word_embeddings", False) and hasattr(model, "tie_weights"):
        model.tie_weights()
