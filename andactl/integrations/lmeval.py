"""lm-eval integration: model type ``andactl`` (an ``HFLM`` over ``andactl.load``).

Registered lazily (a placeholder ``module:Class``) when ``lm_eval.api.registry`` is imported after
``import andactl``, so lm-eval's model modules are only imported when the model is used:

    lm_eval.simple_evaluate(model="andactl", model_args="pretrained=DIR", tasks=[...])
    python -m andactl.evaluation.lmeval_cli run --model andactl --model_args pretrained=DIR --tasks ...
"""
from __future__ import annotations

NAME = "andactl"
TARGET = "andactl.integrations.lmeval_model:AndactlLM"


def register() -> None:
    """Registers model type ``andactl`` with lm-eval's model registry (idempotent)."""
    from lm_eval.api.registry import model_registry

    if NAME not in model_registry.keys():
        model_registry.register(NAME, target=TARGET)
