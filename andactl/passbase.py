"""Pass interface (requires, excludes -> run -> provides), typed configs and the pass registry.

Modelled on torch.fx's ``PassBase``: a pass declares what it needs from earlier passes and what it
provides; the manager checks a whole recipe before running anything.
"""
from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any, ClassVar, Literal, get_args, get_origin

from andactl.errors import ConfigError


SEED_MIN, SEED_MAX = -2**63, 2**63 - 1  # torch.manual_seed takes a 64-bit integer


def check_seed(seed, what: str) -> None:
    """ConfigError unless ``seed`` is None or an integer torch.manual_seed takes (``what``: its name)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not SEED_MIN <= seed <= SEED_MAX):
        raise ConfigError(f"{what} must be an integer from -2**63 to 2**63 - 1, got {seed!r}")


@dataclasses.dataclass
class PassConfig:
    """Base for pass configs. Subclasses are dataclasses; ``validate`` raises ConfigError."""

    def validate(self) -> None:  # pragma: no cover - default accepts everything
        return None


# capabilities of a model whose weights or activations are quantized (what rotate, slice, recover
# and quantize refuse to start from)
QUANTIZED = ("int4_weights", "packed", "anda_activations")


class Pass:
    """A model transformation. Subclasses set ``name``, ``Config``, ``requires``, ``provides`` and
    ``excludes`` (capabilities the model must not have yet: a pass that cannot be applied twice, or
    not after quantization).

    ``run(ctx)`` edits ``ctx.model`` in place and returns a JSON-able summary for the report.
    A pass that changes module structure updates the typed ``ctx.records``
    (``andactl.formats.records``); the artifact reader rebuilds the structure from those records
    alone, so reading an artifact never needs a pass.
    """

    name: ClassVar[str]
    Config: ClassVar[type[PassConfig]] = PassConfig
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    excludes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # True when the pass reaches decoder layers only through ``ctx.layers.onload(i)``, so it runs
    # on a layer-wise streamed model (andactl/models/layer_store.py)
    streams: ClassVar[bool] = False

    def __init__(self, config: PassConfig | None = None):
        self.config = config if config is not None else self.Config()

    def run(self, ctx) -> dict:
        raise NotImplementedError


_REGISTRY: dict[str, type[Pass]] = {}
BUILTIN_PASS_MODULES = (
    "andactl.passes.fuse_norms",
    "andactl.passes.rotate",
    "andactl.passes.slice",
    "andactl.passes.quantize_weights",
    "andactl.passes.sensitivity",
    "andactl.passes.anda_search",
    "andactl.passes.pack",
    "andactl.passes.anda_fakequant",
    "andactl.passes.quantize_tables",
    "andactl.passes.recover",
    "andactl.passes.prune_mlp",
)


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: makes the pass available to recipes under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Pass]]:
    """All registered passes, after importing the built-in pass modules that exist."""
    for mod in BUILTIN_PASS_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:
                raise
    return dict(_REGISTRY)


def get_pass(name: str) -> type[Pass]:
    passes = registry()
    if name not in passes:
        raise ConfigError(f"unknown pass '{name}'; known passes: {', '.join(sorted(passes))}")
    return passes[name]


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Returns ``value`` coerced to ``tp`` (int->float only) or raises ConfigError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check_type(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (inner, *_) = get_args(tp) or (Any,)
        return [_check_type(v, inner, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    return value


def parse_config(cls: type[PassConfig], params: dict, where: str) -> PassConfig:
    """Builds ``cls`` from ``params``: unknown keys, wrong types and invalid values are errors."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields)) or 'none'}"
                          + _elsewhere(unknown))
    values = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in params.items()}
    config = cls(**values)
    config.validate()
    return config


def _elsewhere(names: list[str]) -> str:
    """Where each of ``names`` is a parameter of other passes (a recipe that put it on the wrong
    step), as a suffix for the unknown-parameter error; empty when no pass takes any of them."""
    owners = {n: sorted(name for name, cls in registry().items() if n in {f.name for f in dataclasses.fields(cls.Config)})
              for n in names}
    hints = [f"'{n}' is a parameter of {', '.join(repr(o) for o in found)}" for n, found in owners.items() if found]
    return f" ({'; '.join(hints)})" if hints else ""


def config_to_dict(config: PassConfig) -> dict:
    return dataclasses.asdict(config)
