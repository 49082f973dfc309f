"""Recipe files: YAML, either a list of pass steps or a mapping with model/output/passes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from andactl.errors import ConfigError
from andactl.passbase import check_seed

RECIPE_KEYS = {"model", "output", "passes", "calibration", "dtype", "device", "seed", "eval", "storage_dtype", "stream",
               "spill_activations"}


@dataclass
class Recipe:
    """A parsed recipe. ``passes`` is the raw step list (validated by PassManager.from_recipe)."""

    passes: list[dict]
    model: str | None = None
    output: str | None = None
    calibration: dict = field(default_factory=dict)
    dtype: str | None = None
    device: str | None = None
    seed: int | None = None
    eval: dict | None = None
    storage_dtype: str | None = None
    stream: bool | None = None  # layer-wise streaming; None: decided from --max-memory (as on slice/quantize)
    spill_activations: bool | None = None

    def to_dict(self) -> dict:
        keys = ("model", "output", "dtype", "device", "seed", "storage_dtype", "stream", "spill_activations")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        if self.calibration:
            out["calibration"] = self.calibration
        out["passes"] = self.passes
        if self.eval:
            out["eval"] = self.eval
        return out


def parse_recipe(data, source: str = "recipe") -> Recipe:
    """Validates the top-level shape of a recipe document."""
    if isinstance(data, list):
        return Recipe(passes=data)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a list of passes or a mapping with 'passes'")
    unknown = sorted(set(data) - RECIPE_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(RECIPE_KEYS))}")
    if "passes" not in data:
        raise ConfigError(f"{source}: missing 'passes'")
    cal = data.get("calibration") or {}
    if not isinstance(cal, dict):
        raise ConfigError(f"{source}: 'calibration' must be a mapping")
    seed = data.get("seed")
    check_seed(seed, f"{source}: 'seed'")
    for key in ("stream", "spill_activations"):
        if data.get(key) is not None and not isinstance(data[key], bool):
            raise ConfigError(f"{source}: '{key}' must be true or false")
    return Recipe(
        passes=data["passes"], model=data.get("model"), output=data.get("output"), calibration=cal,
        dtype=data.get("dtype"), device=data.get("device"), seed=seed, eval=data.get("eval"),
        storage_dtype=data.get("storage_dtype"), stream=data.get("stream"),
        spill_activations=data.get("spill_activations"),
    )


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    return parse_recipe(data, str(path))


def dump_recipe(recipe: Recipe | list[dict] | dict) -> str:
    data = recipe.to_dict() if isinstance(recipe, Recipe) else recipe
    return yaml.safe_dump(data, sort_keys=False)
