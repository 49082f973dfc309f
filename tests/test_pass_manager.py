"""PassManager: registry, typed configs, requirement ordering, instruments, error naming."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
import torch

from andactl.context import PassContext
from andactl.errors import ConfigError
from andactl.manager import PassFailed, PassManager
from andactl.passbase import Pass, PassConfig, parse_config, register_pass, registry
from andactl.recipe import dump_recipe, load_recipe, parse_recipe


@dataclass
class _ScaleConfig(PassConfig):
    factor: float = 2.0
    mode: Literal["mul", "add"] = "mul"
    steps: int = 1

    def validate(self):
        if self.factor <= 0:
            raise ConfigError("factor must be > 0")


@register_pass
class _Scale(Pass):
    """Test pass: scales every parameter."""

    name = "_test_scale"
    Config = _ScaleConfig
    provides = ("scaled",)

    def run(self, ctx):
        with torch.no_grad():
            for p in ctx.model.parameters():
                p.mul_(self.config.factor) if self.config.mode == "mul" else p.add_(self.config.factor)
        return {"factor": self.config.factor}


@register_pass
class _NeedsScaled(Pass):
    name = "_test_needs_scaled"
    requires = ("scaled",)
    provides = ("checked",)

    def run(self, ctx):
        return {"ok": True}


@register_pass
class _Once(Pass):
    name = "_test_once"
    provides = ("once",)
    excludes = ("once", "scaled")

    def run(self, ctx):
        return {}


@register_pass
class _Boom(Pass):
    name = "_test_boom"

    def run(self, ctx):
        raise RuntimeError("kaboom")


def _ctx():
    model = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.ones_(model.weight)
    return PassContext(model=model, adapter=None, tokenizer=None)


def test_registry_contains_test_passes():
    assert {"_test_scale", "_test_needs_scaled"} <= set(registry())


def test_run_in_order_and_report():
    ctx = _ctx()
    pm = PassManager.from_recipe([{"pass": "_test_scale", "factor": 3}, {"pass": "_test_needs_scaled"}])
    records = pm.run(ctx)
    assert torch.equal(ctx.model.weight, torch.full((2, 2), 3.0))
    assert [r["pass"] for r in records] == ["_test_scale", "_test_needs_scaled"]
    assert records[0]["result"] == {"factor": 3.0}
    assert records[0]["seconds"] >= 0 and records[0]["peak_rss_mb"] > 0
    assert ctx.provided == {"scaled", "checked"}
    assert ctx.report["passes"] == records


def test_order_violation_refused_before_anything_runs():
    ctx = _ctx()
    pm = PassManager.from_recipe([{"pass": "_test_needs_scaled"}, {"pass": "_test_scale"}])
    with pytest.raises(ConfigError, match="'_test_needs_scaled' \\(step 1\\) requires scaled"):
        pm.run(ctx)
    assert torch.equal(ctx.model.weight, torch.ones(2, 2))


def test_requirement_provided_by_input_model():
    ctx = _ctx()
    ctx.provided.add("scaled")
    PassManager.from_recipe([{"pass": "_test_needs_scaled"}]).run(ctx)
    assert "checked" in ctx.provided


def test_excluded_capability_refused_before_anything_runs():
    ctx = _ctx()
    pm = PassManager.from_recipe([{"pass": "_test_once"}, {"pass": "_test_scale"}, {"pass": "_test_once"}])
    with pytest.raises(ConfigError, match="'_test_once' \\(step 3\\) cannot run after once, scaled, which"):
        pm.run(ctx)
    assert torch.equal(ctx.model.weight, torch.ones(2, 2)) and ctx.provided == set()


def test_excluded_capability_of_the_input_model():
    ctx = _ctx()
    ctx.provided.add("scaled")
    with pytest.raises(ConfigError, match="'_test_once' \\(step 1\\) cannot run after scaled, which"):
        PassManager.from_recipe([{"pass": "_test_once"}]).check(ctx.provided)
    PassManager.from_recipe([{"pass": "_test_once"}]).check(set())


def test_builtin_passes_refuse_a_second_rotation_or_slicing():
    for names, have, clash in ((["rotate"], {"fused_norms", "rotated"}, "rotated"),
                               (["rotate"], {"fused_norms", "int4_weights", "packed"}, "int4_weights, packed"),
                               (["rotate", "slice", "rotate"], {"fused_norms"}, "rotated"),
                               (["slice"], {"rotated", "sliced"}, "sliced")):
        with pytest.raises(ConfigError, match=f"cannot run after {clash}, which"):
            PassManager.from_recipe([{"pass": n} for n in names]).check(have)


@pytest.mark.parametrize("step,msg", [
    ({"pass": "_test_nope"}, "unknown pass '_test_nope'"),
    ({"pass": "_test_scale", "factor": "big"}, "factor: expected a number"),
    ({"pass": "_test_scale", "steps": 1.5}, "steps: expected an integer"),
    ({"pass": "_test_scale", "mode": "div"}, "'div' is not one of 'mul', 'add'"),
    ({"pass": "_test_scale", "colour": 1}, "unknown parameter\\(s\\) colour"),
    ({"pass": "_test_scale", "factor": -1}, "factor must be > 0"),
    ({"factor": 2}, "expected a mapping with a 'pass' key"),
])
def test_bad_recipe_steps(step, msg):
    with pytest.raises(ConfigError, match=msg):
        PassManager.from_recipe([step])


def test_unknown_parameter_names_the_passes_that_take_it():
    """A parameter put on the wrong step (SliceGPT's ratio on slice instead of rotate) is named with
    the passes that take it; a name no pass takes gets no hint."""
    with pytest.raises(ConfigError, match="pass 'slice' \\(step 1\\): unknown parameter\\(s\\) ratio; allowed: none "
                                          "\\('ratio' is a parameter of 'prune_mlp', 'rotate'\\)$"):
        PassManager.from_recipe([{"pass": "slice", "ratio": 0.25}])
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) colour; allowed: factor, mode, steps$"):
        PassManager.from_recipe([{"pass": "_test_scale", "colour": 1}])


def test_failing_pass_is_named():
    with pytest.raises(PassFailed, match="pass '_test_boom' failed: RuntimeError: kaboom"):
        PassManager.from_recipe([{"pass": "_test_boom"}]).run(_ctx())


def test_resolved_recipe_fills_defaults_and_round_trips(tmp_path):
    pm = PassManager.from_recipe([{"pass": "_test_scale", "factor": 5}])
    resolved = pm.resolved_recipe()
    assert resolved == [{"pass": "_test_scale", "factor": 5.0, "mode": "mul", "steps": 1}]
    path = tmp_path / "r.yaml"
    path.write_text(dump_recipe({"model": "m", "passes": resolved}))
    recipe = load_recipe(path)
    assert recipe.model == "m" and recipe.passes == resolved
    assert PassManager.from_recipe(recipe.passes).resolved_recipe() == resolved


def test_parse_config_int_to_float():
    assert parse_config(_ScaleConfig, {"factor": 4}, "x").factor == 4.0


@pytest.mark.parametrize("doc,msg", [
    ("passes: 3\nbogus: 1", "unknown key"),
    ("model: x", "missing 'passes'"),
    ("seed: abc\npasses: []", "'seed' must be an integer"),
    ("[unclosed", "not valid YAML"),
])
def test_bad_recipe_documents(tmp_path, doc, msg):
    path = tmp_path / "bad.yaml"
    path.write_text(doc)
    with pytest.raises(ConfigError, match=msg):
        load_recipe(path)


def test_list_recipe_form():
    assert parse_recipe([{"pass": "a"}]).passes == [{"pass": "a"}]


def test_every_example_recipe_is_valid():
    """Each recipe under examples/recipes names known passes with valid settings, in an order the
    pass manager accepts for its source (checked without loading a model)."""
    from pathlib import Path

    from andactl.manager import PassManager
    from andactl.pipeline import calibration_config
    from andactl.recipe import load_recipe

    paths = sorted((Path(__file__).resolve().parent.parent / "examples" / "recipes").glob("*.yaml"))
    assert {"prune.yaml", "recover.yaml"} <= {p.name for p in paths}
    for path in paths:
        recipe = load_recipe(path)
        manager = PassManager.from_recipe(recipe.passes, [])
        manager.check(set())
        calibration_config(recipe.calibration or {})
