"""The artifact reader: records -> module tree at the right shapes -> every tensor checked -> loaded.

No pass registry and no dense detour: the HF model of the base architecture is built with its
parameters on the ``meta`` device (no random init, no memory), the records are applied to it
(``apply_records``: fused norms, SliceGPT layers cut to their widths, ``AndaLinear`` for every
packed module), every stored tensor's shape AND dtype is compared with the tree's, and the stored
tensors are assigned in place (``load_state_dict(assign=True)``). Never imports ``andactl.passes``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from andactl.errors import ArtifactError
from andactl.formats import quant_config
from andactl.formats.records import MODEL_TYPE, SECTION, ArtifactRecords, check_version

WEIGHTS = "model.safetensors"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def read_config(path: Path) -> dict:
    """config.json of a model directory as a dict; ArtifactError if missing or not JSON."""
    cfg_path = Path(path) / "config.json"
    try:
        return json.loads(cfg_path.read_text())
    except FileNotFoundError as err:
        raise ArtifactError(f"{path}: no config.json") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{cfg_path}: not valid JSON ({err})") from err


def read_records(config: dict, where="artifact") -> ArtifactRecords:
    """Validated records of an artifact's config.json (version first, then every field)."""
    section = config.get(SECTION)
    if not isinstance(section, dict):
        raise ArtifactError(f"{where}: config.json has no '{SECTION}' section: not an andactl artifact")
    try:
        check_version(section)
        if config.get("model_type") != MODEL_TYPE:
            raise ArtifactError(f"config.json model_type is {config.get('model_type')!r}, not '{MODEL_TYPE}'")
        packed = quant_config.parse(config.get("quantization_config"))
        return ArtifactRecords.from_section(section, packed)
    except ArtifactError as err:
        raise ArtifactError(f"{where}: {err}") from err


def base_config_dict(config: dict) -> dict:
    """The HF config dict of the base architecture (andactl's own keys removed)."""
    base = {k: v for k, v in config.items() if k not in (SECTION, "quantization_config")}
    base["model_type"] = config[SECTION]["base_model_type"]
    return base


def build_hf_config(config: dict, where: str | Path = "."):
    """HF config object of the base architecture from the config.json dict of the artifact at ``where``."""
    return config_object(base_config_dict(config), where)


def config_object(config: dict, where: str | Path):
    """HF config object of a config.json dict (the one in folder ``where``); ArtifactError (one line,
    with transformers' reason) for an unknown model_type or a config transformers' validators
    refuse (a hidden size no multiple of the heads, ...: their own error types, not ValueError)."""
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ArtifactError(f"{where}/config.json names unknown model_type {model_type!r}")
    try:
        return CONFIG_MAPPING[model_type].from_dict(config)
    except Exception as err:
        reason = err.__cause__ or err
        text = (str(reason).strip().splitlines() or [""])[0][:200]
        raise ArtifactError(f"{where}/config.json does not describe a valid {model_type} model "
                            f"({type(reason).__name__}: {text})") from err


def apply_records(model: torch.nn.Module, records: ArtifactRecords) -> None:
    """Edits ``model``'s module tree into the artifact's structure; new tensors go on the device and
    dtype of the model's existing ones (``meta`` when reading). Invariant: afterwards the tree's
    state-dict names, shapes and dtypes are the ones the artifact's writer saved."""
    from andactl.models.adapters import get_adapter
    from andactl.models.anda_linear import AndaLinear
    from andactl.models.structure import apply_dims, replace_norms, untie_head

    adapter = get_adapter(model)
    records.check_against(adapter.hidden_size, len(adapter.layers()))
    if records.norms is not None:
        untie_head(model, adapter)
        for name in records.norms.biased:
            lin = _submodule(model, name)
            if lin.bias is None:
                lin.bias = torch.nn.Parameter(torch.empty(lin.out_features, dtype=lin.weight.dtype,
                                                          device=lin.weight.device))
        replace_norms(adapter, records.norms.hidden_size, records.norms.eps)
    if records.slicing is not None:
        apply_dims(adapter, records.slicing.to_plan())
    for name, spec in records.packed.items():
        old = _submodule(model, name)
        if not isinstance(old, torch.nn.Linear):
            raise ArtifactError(f"packed module '{name}' is a {type(old).__name__}, not a linear layer")
        new = AndaLinear(old.in_features, old.out_features, spec.group_size, spec.mantissa_bits,
                         rounding=spec.rounding, asymmetric=not spec.symmetric, bias=old.bias is not None,
                         dtype=old.weight.dtype, device=old.weight.device)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    if records.tables is not None:
        from andactl.models.quantized_tables import install_tables

        install_tables(model, records.tables.to_dict())


def install_activation_hooks(model: torch.nn.Module, records: ArtifactRecords) -> None:
    """Permanent Anda fake-quant of the activations of a float-weight Anda artifact."""
    if records.activations is None:
        return
    from andactl.models.adapters import get_adapter
    from andactl.models.anda_hooks import anda_activations

    hooks = anda_activations(model, get_adapter(model), records.activations.bits, records.activations.rounding)
    hooks.__enter__()  # for the model's lifetime
    model._andactl_activation_hooks = hooks


def _submodule(model, name: str):
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise ArtifactError(f"the records name module '{name}', which the model does not have") from err


def tensor_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (safetensors dtype, shape) from ``model.safetensors``'s header alone; ArtifactError
    unless the file is exactly as long as its header says (a truncated copy fails here, before any
    tensor data is read)."""
    file = Path(path) / WEIGHTS
    if not file.is_file():
        raise ArtifactError(f"{path}: {WEIGHTS} is missing")
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if n <= 0 or n > size - 8:
                raise ValueError("bad header length")
            header = json.loads(fh.read(n))
        entries = {k: v for k, v in header.items() if k != "__metadata__"}
        data = max((int(v["data_offsets"][1]) for v in entries.values()), default=0)
        result = {k: (v["dtype"], tuple(v["shape"])) for k, v in entries.items()}
    except Exception as err:  # noqa: BLE001 - any failure here means a corrupt file
        raise ArtifactError(f"{file}: corrupt or not a safetensors file ({str(err).splitlines()[0]})") from err
    if size != 8 + n + data:
        raise ArtifactError(f"{file}: truncated or padded: {size:,} bytes where its header needs {8 + n + data:,} "
                            "(an interrupted copy? copy the artifact again)")
    return result


_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
              "U8": torch.uint8, "I8": torch.int8, "I32": torch.int32, "I64": torch.int64, "BOOL": torch.bool}


def expected_tensors(model: torch.nn.Module) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """name -> (dtype, shape) of every persistent tensor of ``model``'s state dict."""
    return {k: (v.dtype, tuple(v.shape)) for k, v in model.state_dict(keep_vars=True).items()}


def validate_tensors(expected: dict, header: dict, aliases: dict[str, str], where) -> None:
    """Every stored tensor belongs to the tree with its shape and dtype; every tree tensor (but tied
    aliases) is stored. The error names the module."""
    for name, (st_dtype, shape) in header.items():
        if name not in expected:
            raise ArtifactError(f"{where}: tensor '{name}' does not belong to the model the config describes")
        dtype, want = expected[name]
        module = name.rsplit(".", 1)[0]
        if want != shape:
            raise ArtifactError(f"{where}: module '{module}': tensor '{name}' has shape {list(shape)}, "
                                f"the config implies {list(want)}")
        if _ST_DTYPES.get(st_dtype) != dtype:
            raise ArtifactError(f"{where}: module '{module}': tensor '{name}' has dtype {st_dtype}, "
                                f"the config implies {str(dtype).replace('torch.', '')}")
    missing = [k for k in expected if k not in header and k not in aliases]
    if missing:
        raise ArtifactError(f"{where}: {len(missing)} tensor(s) missing, first: '{missing[0]}'")


def _accept_compact_int4(model, records: ArtifactRecords, header: dict, expected: dict) -> None:
    """Packed modules may store trimmed codes and float16 scales (formats/int4_storage.py): where
    the header holds exactly that form, expect it instead of the in-memory one."""
    from andactl.formats.int4_storage import trimmed_bytes

    for name, spec in records.packed.items():
        k = int(model.get_submodule(name).in_features)
        key = f"{name}.weight_packed"
        if key in header and key in expected:
            n = expected[key][1][0]
            if header[key] == ("U8", (n, trimmed_bytes(k))):
                expected[key] = (torch.uint8, (n, trimmed_bytes(k)))
        key = f"{name}.weight_scale"
        if key in header and key in expected and header[key][0] == "F16":
            expected[key] = (torch.float16, expected[key][1])


def _expand_int4(model, records: ArtifactRecords, state: dict) -> None:
    """Re-pads trimmed codes and widens float16 scales in ``state`` (bit-exact inverse of the
    writer's ``int4_storage.compact``)."""
    from andactl.formats.int4_storage import expand

    for name, spec in records.packed.items():
        k = int(model.get_submodule(name).in_features)
        zeros = state.get(f"{name}.weight_zero_point")
        state[f"{name}.weight_packed"] = expand(state[f"{name}.weight_packed"], zeros, k, spec.group_size)
        scale = state[f"{name}.weight_scale"]
        if scale.dtype != torch.float32:
            state[f"{name}.weight_scale"] = scale.float()


def expand_loaded_int4(model, records: ArtifactRecords) -> None:
    """After a loader that assigned the stored tensors as they are (transformers' from_pretrained):
    re-pad each packed module's trimmed codes and widen its float16 scales, in place."""
    state = {}
    for name in records.packed:
        mod = model.get_submodule(name)
        state[f"{name}.weight_packed"] = mod.weight_packed
        state[f"{name}.weight_scale"] = mod.weight_scale
        if mod.weight_zero_point is not None:
            state[f"{name}.weight_zero_point"] = mod.weight_zero_point
    _expand_int4(model, records, state)
    for name in records.packed:
        mod = model.get_submodule(name)
        mod._buffers["weight_packed"] = state[f"{name}.weight_packed"]
        mod._buffers["weight_scale"] = state[f"{name}.weight_scale"]
        mod._w_cache = mod._wpp_cache = mod._fused_cache = None


def load_int8_shortcuts(model, path: Path, dtype: torch.dtype) -> None:
    """For loaders that skipped them (transformers' from_pretrained): the INT8 shortcut matrices of
    the artifact at ``path``, dequantized into ``model``'s shortcut buffers in ``dtype``."""
    from safetensors import safe_open

    from andactl.formats.storage import CODES_SUFFIX, SCALE_SUFFIX_Q, shortcuts_from_int8

    state = {}
    with safe_open(str(Path(path) / WEIGHTS), "pt") as fh:
        for key in fh.keys():
            if key.endswith(CODES_SUFFIX) or key.endswith(SCALE_SUFFIX_Q):
                state[key] = fh.get_tensor(key)
    names = [k[: -len(CODES_SUFFIX)] for k in state if k.endswith(CODES_SUFFIX)]
    shortcuts_from_int8(state, names, dtype)
    for name, t in state.items():
        module, _, leaf = name.rpartition(".")
        model.get_submodule(module)._buffers[leaf] = t


def read_artifact(path: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"):
    """(model in eval mode, config dict) of the artifact at ``path``, on ``device`` in ``dtype``
    (None: the stored dtype; packed modules keep uint8 codes and float32 scales).
    ArtifactError (one line, naming the module or field) before any tensor data is read."""
    from accelerate import init_empty_weights
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    path = Path(path)
    config = read_config(path)
    records = read_records(config, path)
    header = tensor_header(path)
    hf_config = build_hf_config(config, path)
    stored = _DTYPES[records.dtype]
    target = dtype or stored
    with init_empty_weights(include_buffers=False):
        # built at the target dtype, like from_pretrained(dtype=...): buffers HF computes itself
        # (rotary inv_freq) keep their own precision instead of being cast afterwards
        model = AutoModelForCausalLM.from_config(hf_config, dtype=target)
        try:
            apply_records(model, records)
        except ArtifactError as err:
            raise ArtifactError(f"{path}: {err}") from err
    # quantization scales keep their format's dtype whatever the model dtype: float32 for packed
    # linears, float16 for quantized tables
    model_tensors = expected_tensors(model)
    fixed = {f"{name}.weight_scale" for name in records.packed} | {k for k in model_tensors if k.endswith(".weight_scale")}
    expected = {k: (stored if v[0].is_floating_point and k not in fixed else v[0], v[1])
                for k, v in model_tensors.items()}
    aliases = dict(config[SECTION].get("tied_aliases") or {})
    for name in config[SECTION].get("storage_fp32_tensors") or []:  # too large for the storage dtype
        if name in expected:
            expected[name] = (torch.float32, expected[name][1])
    _accept_compact_int4(model, records, header, expected)
    int8_shortcuts = []
    if config[SECTION].get("shortcut_storage", "float") == "int8":  # formats/storage.py
        from andactl.formats.storage import int8_shortcut_entries, is_shortcut

        int8_shortcuts = [k for k in expected if is_shortcut(k)]
        for name in int8_shortcuts:
            expected.update(int8_shortcut_entries(name, expected.pop(name)[1]))
    validate_tensors(expected, header, aliases, path)
    state = load_file(str(path / WEIGHTS), device=str(device) if str(device) != "meta" else "cpu")
    _expand_int4(model, records, state)
    if int8_shortcuts:
        from andactl.formats.storage import shortcuts_from_int8

        shortcuts_from_int8(state, int8_shortcuts, target)
    for name, t in state.items():
        if t.is_floating_point() and name not in fixed and t.dtype != target:
            state[name] = t.to(target)
    for alias, target_name in aliases.items():
        state[alias] = state[target_name]
    model.load_state_dict(state, strict=True, assign=True)
    if getattr(model.config, "tie_word_embeddings", False) and hasattr(model, "tie_weights"):
        model.tie_weights()
    still_meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if still_meta:
        raise ArtifactError(f"{path}: tensor '{still_meta[0]}' was not filled from {WEIGHTS}")
    model.to(device)
    install_activation_hooks(model, records)
    anchor_device(model)
    return model.eval(), config


def share_aliases(model: torch.nn.Module, aliases: dict[str, str]) -> None:
    """For loaders that left them unfilled (transformers' from_pretrained): each ``alias`` tensor
    (config ``tied_aliases``, e.g. a tied source's quantized head table, stored once under the
    embedding's name) becomes its target tensor itself. Invariant: afterwards the model holds what
    ``read_artifact`` builds, one storage for both names."""
    for alias, target in aliases.items():
        module_name, _, leaf = alias.rpartition(".")
        module = model.get_submodule(module_name)
        if leaf in module._parameters:
            module._parameters[leaf] = model.get_parameter(target)
        else:
            module._buffers[leaf] = model.get_buffer(target)


def anchor_device(model: torch.nn.Module) -> None:
    """Gives a model with no parameters at all (every linear packed, head and embeddings quantized
    tables, norms fused: only buffers) one empty, frozen parameter on its buffers' device, because
    transformers reads ``model.device`` (``generate``, pipelines) from the first parameter.
    Invariant: outputs unchanged; a model with any parameter is left untouched. Registered after
    the strict state-dict load, so it is never an expected artifact tensor."""
    if next(model.parameters(), None) is not None:
        return
    buf = next(model.buffers(), None)
    device = buf.device if buf is not None else torch.device("cpu")
    model.register_parameter("andactl_device_anchor",
                             torch.nn.Parameter(torch.empty(0, device=device), requires_grad=False))
