"""lm-eval's own command line with andactl's model type registered:

    python -m andactl.evaluation.lmeval_cli run --model andactl --model_args pretrained=DIR --tasks piqa

Everything after the module name is lm-eval's CLI, unchanged (``lm_eval --help``)."""
from __future__ import annotations


def main() -> None:
    import andactl  # noqa: F401  (registers model type "andactl" when lm-eval's registry loads)
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
