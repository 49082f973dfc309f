"""transformers integration: ``AutoModelForCausalLM.from_pretrained(artifact)`` after ``import andactl``.

An artifact's config.json says ``"model_type": "andactl"`` (so a transformers without andactl fails
with its own "does not recognize this architecture" error instead of loading wrong weights) and
carries ``quantization_config.quant_method = "andactl"``. Registered here:

- ``AndactlConfig`` for model_type ``andactl``: its ``from_dict`` returns the config of the base
  architecture (``andactl.base_model_type``), so transformers picks the base model class;
- ``AndactlQuantizationConfig`` / ``AndactlHfQuantizer`` for quant_method ``andactl``: before the
  weights are loaded (model on the meta device), the quantizer applies the artifact's records
  (``formats.reader.apply_records``: fused norms, SliceGPT layers at their widths, ``AndaLinear``);
  transformers then loads the stored tensors by name; afterwards activation hooks are installed.
"""
from __future__ import annotations

import re

_DONE: set[str] = set()


def register_config() -> None:
    """Registers model_type ``andactl`` with AutoConfig (idempotent)."""
    if "config" in _DONE:
        return
    from transformers import CONFIG_MAPPING, PretrainedConfig
    from transformers.models.auto.configuration_auto import AutoConfig

    from andactl.formats.records import MODEL_TYPE, SECTION

    class AndactlConfig(PretrainedConfig):
        """Stands for an andactl artifact's config: ``from_dict`` builds the base architecture's."""

        model_type = MODEL_TYPE

        @classmethod
        def from_dict(cls, config_dict, **kwargs):
            section = config_dict.get(SECTION) or {}
            base = section.get("base_model_type")
            if base not in CONFIG_MAPPING or base == MODEL_TYPE:
                raise ValueError(f"andactl artifact config names unknown base_model_type {base!r}")
            return CONFIG_MAPPING[base].from_dict({**config_dict, "model_type": base}, **kwargs)

    AutoConfig.register(MODEL_TYPE, AndactlConfig, exist_ok=True)
    _DONE.add("config")


def register_quantizer() -> None:
    """Registers quant_method ``andactl`` (config class and HfQuantizer) with transformers (idempotent)."""
    if "quantizer" in _DONE:
        return
    from transformers.quantizers import auto as qauto
    from transformers.quantizers.base import HfQuantizer
    from transformers.utils.quantization_config import QuantizationConfigMixin

    from andactl.formats import quant_config
    from andactl.formats.records import SECTION, ArtifactRecords

    class AndactlQuantizationConfig(QuantizationConfigMixin):
        """The artifact's quantization_config, kept verbatim (``to_dict`` returns it unchanged)."""

        def __init__(self, **kwargs):
            self._raw = dict(kwargs)
            self.quant_method = quant_config.QUANT_METHOD
            self.packed = quant_config.parse(self._raw)  # ArtifactError on anything we cannot run

        @classmethod
        def from_dict(cls, config_dict, return_unused_kwargs=False, **kwargs):
            config = cls(**config_dict)
            return (config, kwargs) if return_unused_kwargs else config

        def to_dict(self):
            return dict(self._raw)

        def to_diff_dict(self):
            return self.to_dict()

    class AndactlHfQuantizer(HfQuantizer):
        """Builds the artifact's module tree on the meta model before transformers loads the weights."""

        requires_calibration = True  # only pre-quantized (andactl-written) checkpoints
        required_packages = None

        def __init__(self, quantization_config, **kwargs):
            super().__init__(quantization_config, **kwargs)
            self.records = None
            self.aliases: dict[str, str] = {}

        def validate_environment(self, *args, **kwargs):
            return None

        def update_dtype(self, dtype):
            return dtype

        def param_needs_quantization(self, model, param_name: str, **kwargs) -> bool:
            # packed codes may be stored trimmed to the real K (formats/int4_storage.py): exempt them
            # from transformers' shape check; _process_model_after_weight_loading re-pads them
            module, _, leaf = param_name.rpartition(".")
            return leaf == "weight_packed" and module in (self.records.packed if self.records else {})

        def _process_model_before_weight_loading(self, model, **kwargs):
            from andactl.formats.reader import apply_records
            from andactl.models.vector_math_warmup import warm_vector_math

            warm_vector_math()  # as andactl.load does: before any multi-threaded unary op (pytorch#188792)

            section = getattr(model.config, SECTION, None)
            if not isinstance(section, dict):
                raise ValueError("quant_method 'andactl' but the config has no 'andactl' section")
            self.records = ArtifactRecords.from_section(section, self.quantization_config.packed)
            apply_records(model, self.records)
            # names stored once under another (a tied source's quantized head table): not missing,
            # they are shared after loading (share_aliases); transformers would log them as "newly
            # initialized" otherwise
            self.aliases = dict(section.get("tied_aliases") or {})
            if self.aliases:
                ignored = set(getattr(model, "_keys_to_ignore_on_load_missing", None) or ())
                model._keys_to_ignore_on_load_missing = ignored | {f"^{re.escape(a)}$" for a in self.aliases}
            # transformers >= 5.25 kernelizes the model (the `kernels` package) before the after-loading
            # step below, reading `model.device` from the first parameter, unless it knows the device:
            # a model whose linears are all packed and whose head and embeddings are quantized tables has
            # none until anchor_device adds one there (StopIteration). Without a device_map the weights
            # load on the CPU; with one, kernelize takes the device from the map itself.
            if getattr(model, "_kernels_device", None) is None:
                model._kernels_device = "cpu"
                self.named_kernels_device = True
            return model

        def _process_model_after_weight_loading(self, model, **kwargs):
            from andactl.formats.reader import anchor_device, expand_loaded_int4, install_activation_hooks, share_aliases

            share_aliases(model, self.aliases)
            expand_loaded_int4(model, self.records)
            section = getattr(model.config, SECTION, None) or {}
            if section.get("shortcut_storage", "float") == "int8":
                from andactl.formats.reader import load_int8_shortcuts

                load_int8_shortcuts(model, model.config._name_or_path, model.dtype)
            install_activation_hooks(model, self.records)
            anchor_device(model)
            if getattr(self, "named_kernels_device", False):  # model.device answers now: back to transformers' own
                del model._kernels_device
            from andactl.kernels.backend import set_model_backend

            set_model_backend(model, "auto")  # the fast kernels, as andactl.load picks them
            return model

        def is_serializable(self, safe_serialization=None):
            return False

        @property
        def is_trainable(self) -> bool:
            return False

    qauto.AUTO_QUANTIZATION_CONFIG_MAPPING[quant_config.QUANT_METHOD] = AndactlQuantizationConfig
    qauto.AUTO_QUANTIZER_MAPPING[quant_config.QUANT_METHOD] = AndactlHfQuantizer
    _DONE.add("quantizer")


def register() -> None:
    register_config()
    register_quantizer()
