"""Hooks into other libraries, registered lazily on ``import andactl`` (see andactl/__init__.py):
transformers (config + quantizer for artifacts) and lm-eval (model type ``andactl``)."""
