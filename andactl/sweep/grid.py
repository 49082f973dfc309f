"""The sweep grid: validated axes and the points they span (one key per point)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from andactl.errors import ConfigError

WEIGHT_METHODS = ("gptq", "rtn")
# how `andactl recover` runs on each sliced model: kd / lora (its --method: distillation or SliceGPT's
# RFT, both through adapters) or full (`recover --full`: distillation into every linear weight, the
# best on small models; docs/RECOVER.md); "none" skips recovery
RECOVERY_STEPS = {"kd": {"method": "kd"}, "lora": {"method": "lora"}, "full": {"method": "kd", "full": True}}
RECOVERIES = ("none", *RECOVERY_STEPS)


@dataclass(frozen=True)
class SweepPoint:
    """One configuration. ``ratio`` 0 means the source model unsliced (no rotation); ``recover``
    "none" or the recovery method applied to the sliced model before its INT4 weights."""

    ratio: float
    weight_method: str
    tolerance: float
    recover: str = "none"

    @property
    def key(self) -> str:
        rec = "" if self.recover == "none" else f"-{self.recover}"
        return f"r{self.ratio:g}{rec}-{self.weight_method}-t{self.tolerance:g}"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_floats(spec: str, name: str) -> list[float]:
    """Comma-separated numbers; ConfigError naming ``name`` on anything else (or nothing)."""
    items = [s.strip() for s in str(spec).split(",") if s.strip()]
    if not items:
        raise ConfigError(f"empty grid: {name} lists no values")
    try:
        return sorted(set(float(s) for s in items))
    except ValueError as err:
        raise ConfigError(f"{name}: not a comma-separated list of numbers: {spec!r}") from err


def build_grid(ratios: list[float], tolerances: list[float], methods: list[str],
               recoveries: tuple[str, ...] | list[str] = ("none",)) -> list[SweepPoint]:
    """Every (ratio, recovery, method, tolerance); ratios in [0, 1), tolerances in (0, 1), known
    methods and recoveries. Recovery applies to sliced models only: ratio 0 gets "none" alone."""
    for r in ratios:
        if not 0.0 <= r < 1.0:
            raise ConfigError(f"--ratios: {r:g} is outside [0, 1)")
    for t in tolerances:
        if not 0.0 < t < 1.0:
            raise ConfigError(f"--tolerances: {t:g} is outside (0, 1)")
    for m in methods:
        if m not in WEIGHT_METHODS:
            raise ConfigError(f"--weight-methods: unknown method {m!r}; choose from {', '.join(WEIGHT_METHODS)}")
    for rec in recoveries:
        if rec not in RECOVERIES:
            raise ConfigError(f"--recover: unknown recovery {rec!r}; choose from {', '.join(RECOVERIES)}")
    points = [SweepPoint(r, m, t, rec) for r in ratios for rec in dict.fromkeys(recoveries)
              if r > 0 or rec == "none" for m in methods for t in tolerances]
    if not points:
        raise ConfigError("empty grid: nothing to sweep")
    return points
