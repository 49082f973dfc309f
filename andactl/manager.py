"""PassManager: validates a pass list against requirements, then runs it with instruments."""
from __future__ import annotations

from dataclasses import dataclass, field

from andactl.errors import AndaError, ConfigError
from andactl.formats.output_dir import pause
from andactl.instruments import Instrument, PeakMemory, Timing
from andactl.passbase import Pass, config_to_dict, get_pass, parse_config


class PassFailed(AndaError):
    """A pass raised; the message names the pass."""


@dataclass
class PassManager:
    """Runs ``passes`` in order over a PassContext.

    Invariant: ``check`` passes before ``run`` touches the model, so a recipe whose order breaks
    a requirement fails without side effects.
    """

    passes: list[Pass]
    instruments: list[Instrument] = field(default_factory=lambda: [Timing(), PeakMemory()])

    @classmethod
    def from_recipe(cls, steps: list[dict], instruments: list[Instrument] | None = None) -> "PassManager":
        """Builds passes from recipe steps ``[{pass: name, **params}]``; validates every config."""
        if not isinstance(steps, list):
            raise ConfigError("recipe 'passes' must be a list of {pass: name, ...} entries")
        passes = []
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or "pass" not in step:
                raise ConfigError(f"recipe step {i + 1}: expected a mapping with a 'pass' key, got {step!r}")
            params = dict(step)
            name = params.pop("pass")
            p_cls = get_pass(str(name))
            passes.append(p_cls(parse_config(p_cls.Config, params, f"pass '{name}' (step {i + 1})")))
        return cls(passes, instruments if instruments is not None else [Timing(), PeakMemory()])

    def resolved_recipe(self) -> list[dict]:
        """The recipe with every default filled in."""
        return [{"pass": p.name, **config_to_dict(p.config)} for p in self.passes]

    def check(self, provided: set[str]) -> None:
        """Raises ConfigError naming the first pass whose requirement is not provided before it, or
        that would run on a model already having a capability the pass excludes."""
        have = set(provided)
        for i, p in enumerate(self.passes):
            missing = [r for r in p.requires if r not in have]
            if missing:
                raise ConfigError(
                    f"pass '{p.name}' (step {i + 1}) requires {', '.join(missing)}, which no earlier "
                    f"pass or the input model provides (have: {', '.join(sorted(have)) or 'nothing'})"
                )
            clash = [e for e in p.excludes if e in have]
            if clash:
                raise ConfigError(
                    f"pass '{p.name}' (step {i + 1}) cannot run after {', '.join(clash)}, which the input model or an "
                    f"earlier pass already provides (have: {', '.join(sorted(have))}); apply it to the source model"
                )
            have.update(p.provides)

    def run(self, ctx) -> list[dict]:
        """Runs every pass; returns one record per pass (name, config, result, timing, memory)."""
        self.check(ctx.provided)
        records = []
        for p in self.passes:
            record = {"pass": p.name, "config": config_to_dict(p.config)}
            for ins in self.instruments:
                ins.enter_pass(p, ctx)
            try:
                pause(f"pass:{p.name}")
                record["result"] = p.run(ctx) or {}
            except AndaError as err:
                record["status"] = "failed"
                raise type(err)(f"pass '{p.name}': {err}") from err
            except KeyboardInterrupt:
                record["status"] = "interrupted"
                raise
            except Exception as err:  # a bug or an unexpected library error: still name the pass
                record["status"] = "failed"
                raise PassFailed(f"pass '{p.name}' failed: {type(err).__name__}: {err}") from err
            finally:
                for ins in reversed(self.instruments):
                    ins.exit_pass(p, ctx, record)
            ctx.provided.update(p.provides)
            ctx.report.setdefault("passes", []).append(record)
            records.append(record)
        return records
