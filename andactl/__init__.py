"""andactl: SliceGPT slicing + Anda activation quantization for decoder-only LLMs.

The repository keeps ``passes/``, ``formats/`` and ``kernels/`` at its root; a wheel or an
editable install maps them to ``andactl.passes``, ``andactl.formats`` and ``andactl.kernels``
(see pyproject.toml). When the package is imported straight from a source checkout (``pytest``
or ``python -m andactl`` run from the repository root, nothing installed), the finder below
gives the same mapping, so all three ways import the same names and none of the generic
folder names ever becomes a top-level module.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

_HERE = Path(__file__).resolve().parent
_MAPPED = ("passes", "formats", "kernels")


class _SourceTreeFinder(importlib.abc.MetaPathFinder):
    """Resolves ``andactl.<sub>`` for sub in _MAPPED to ``<repo>/<sub>`` in a source checkout."""

    def find_spec(self, fullname, path, target=None):  # noqa: D401 - importlib protocol
        head, _, sub = fullname.partition(".")
        if head != "andactl" or sub not in _MAPPED:
            return None
        pkg = _HERE.parent / sub
        return importlib.util.spec_from_file_location(
            fullname, pkg / "__init__.py", submodule_search_locations=[str(pkg)]
        )


def _source_layout() -> bool:
    return all(
        not (_HERE / sub).exists() and (_HERE.parent / sub / "__init__.py").is_file() for sub in _MAPPED
    ) and (_HERE.parent / "pyproject.toml").is_file()


if _source_layout() and not any(isinstance(f, _SourceTreeFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _SourceTreeFinder())


# --- integrations: registered when the foreign module is imported (no import cost otherwise) -----
# module name -> (andactl module, function) run right after that module finished executing
_AFTER_IMPORT = {
    "transformers.models.auto.configuration_auto": ("andactl.integrations.transformers_hf", "register_config"),
    "transformers.quantizers.auto": ("andactl.integrations.transformers_hf", "register_quantizer"),
    "lm_eval.api.registry": ("andactl.integrations.lmeval", "register"),
}


def _run_hook(name: str) -> None:
    import importlib

    module, func = _AFTER_IMPORT[name]
    getattr(importlib.import_module(module), func)()


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the modules in ``_AFTER_IMPORT`` so andactl registers itself with them
    as soon as they are imported, whoever imports them."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _AFTER_IMPORT:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                loader = spec.loader

                class _Loader(importlib.abc.Loader):
                    def create_module(self, spec):
                        return loader.create_module(spec)

                    def exec_module(self, module):
                        loader.exec_module(module)
                        _run_hook(fullname)

                spec.loader = _Loader()
                return spec
        return None


def _install_integrations() -> None:
    if not any(isinstance(f, _AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder())
    for name in _AFTER_IMPORT:
        if name in sys.modules:
            _run_hook(name)


def load(path, device: str = "cpu", dtype=None, backend: str = "auto"):
    """``(model, tokenizer)`` of the andactl artifact at ``path``, in eval mode on ``device``;
    ``dtype`` (a torch dtype or its name) casts the float tensors (None: as stored); ``backend``
    (auto|cpp|cuda|reference) is the kernel the packed linears run: auto = the C++/CUDA extension
    when it loads (built on first use), else the pure-torch reference."""
    from andactl.kernels.backend import check_backend_name, set_model_backend
    from andactl.models.artifact_loader import load_artifact
    from andactl.models.loading import parse_device, parse_dtype

    check_backend_name(backend)  # before any reading
    if isinstance(dtype, str):
        dtype = parse_dtype(dtype)
    dev = parse_device(str(device))
    model, tokenizer, _ = load_artifact(path, dtype, dev)
    set_model_backend(model, backend, dev)
    return model, tokenizer


_install_integrations()
