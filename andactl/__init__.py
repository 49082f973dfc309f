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
FORMAT_VERSION = 1

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
