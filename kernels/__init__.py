"""Kernels of andactl (installed as ``andactl.kernels``).

- ``andactl.kernels.ops``: the ``torch.ops.andactl`` op schemas (anda_pack, anda_unpack,
  anda_gemm), their pure-torch reference implementations and checked Python wrappers.
- ``andactl.kernels.reference``: the reference arithmetic of the Anda processing element.
- ``andactl.formats.int4_layout``: nibble packing and dequantization of the INT4 weight layout.
- ``andactl.models.anda_linear``: ``AndaLinear``, the INT4-weight / Anda-activation linear.

Nothing is imported here: the ops are registered by importing ``andactl.kernels.ops``.
"""

# Imported by the top-level name ``kernels`` (a source checkout's root on sys.path, as with
# ``python -m pytest`` or ``python -m andactl`` run from the repository root), this folder is not
# what the importer wants: that name belongs to Hugging Face's ``kernels`` package, which
# transformers (>= 5.25) depends on and every 5.x probes. Hand the name over to the installed
# package; where there is none, stand in as an empty namespace-like module (no ``__version__``, no
# ``__file__``, no submodules): transformers' probe (find_spec finds this folder, no distribution
# metadata, so it imports the name) reads exactly that as "a namespace package shadowing on
# sys.path, not a real install"; raising here would crash ``import transformers`` (seen with
# 5.17, where ``kernels`` is optional). andactl itself only ever imports ``andactl.kernels``.
if __name__ == "kernels":
    import importlib.machinery
    import importlib.util
    import os
    import sys
    import types

    _checkout = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _elsewhere = [p for p in sys.path if os.path.realpath(p or os.curdir) != _checkout]
    _spec = importlib.machinery.PathFinder.find_spec("kernels", _elsewhere)
    if _spec is None or _spec.loader is None:
        _module = types.ModuleType("kernels", "stand-in: no installed package named 'kernels'")
        _module.__file__ = None
        _module.__path__ = []  # `import kernels.x` fails with ModuleNotFoundError
        sys.modules["kernels"] = _module
    else:
        _module = importlib.util.module_from_spec(_spec)
        sys.modules["kernels"] = _module
        _spec.loader.exec_module(_module)
