"""The generic folder names map under andactl.* for a source checkout, an editable install and
a wheel, and never become top-level modules."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import andactl.passes as p, andactl.formats as f, andactl.kernels as k; print(p.__file__, f.__file__, k.__file__)"


def _run(args, cwd, env=None):
    return subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)


def test_source_checkout_maps_subpackages():
    out = _run([sys.executable, "-c", PROBE], cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    paths = out.stdout.split()
    assert paths == [str(ROOT / "passes" / "__init__.py"), str(ROOT / "formats" / "__init__.py"), str(ROOT / "kernels" / "__init__.py")]


def test_no_generic_top_level_names(tmp_path):
    """None of the three folders is importable by its bare name from outside the checkout (a
    `kernels` found there is Hugging Face's package, a transformers >= 5.25 dependency)."""
    code = ("import importlib.util as u\nfor n in ('passes', 'formats', 'kernels'):\n"
            "    s = u.find_spec(n)\n    print(n, s.origin if s else None)")
    out = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    found = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert found["passes"] == "None" and found["formats"] == "None"
    assert found["kernels"] == "None" or not found["kernels"].startswith(str(ROOT / "kernels")), found


_SHADOW = """import importlib, sys
sys.path[:0] = {path!r}
k = importlib.import_module("kernels")  # what transformers' package probe does
try:
    import kernels.sub
except ModuleNotFoundError as e:
    print(getattr(k, "__version__", "N/A"), k.__file__, "missing", e.name)
else:
    print(kernels.MARK, kernels.sub.MARK, kernels.__file__)
"""


def test_checkout_hands_kernels_name_over(tmp_path):
    """With the checkout's root first on sys.path, `import kernels` gets the installed package of
    that name (submodules included), or an empty stand-in with neither __version__ nor __file__
    (transformers' probe reads that as "not installed" instead of crashing); never ours."""
    other = tmp_path / "site" / "kernels"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("MARK = 'theirs'\n")
    (other / "sub.py").write_text("MARK = 'theirs.sub'\n")
    # -S: no site-packages, so that an installed Hugging Face `kernels` cannot answer instead.
    out = _run([sys.executable, "-S", "-c", _SHADOW.format(path=[str(ROOT), str(tmp_path / "site")])], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["theirs", "theirs.sub", str(other / "__init__.py")]
    out = _run([sys.executable, "-S", "-c", _SHADOW.format(path=[str(ROOT)])], cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["N/A", "None", "missing", "kernels.sub"]


def test_installed_import_from_elsewhere(tmp_path):
    """From a directory outside the checkout, the installed package (editable here) resolves."""
    out = _run([sys.executable, "-c", PROBE], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(ROOT / "passes") in out.stdout.split()[0]


def _tracked_copy(dest: Path) -> Path:
    """The checkout's tracked files copied to ``dest`` (the checkout itself outside git): a wheel
    built there cannot pick up a stale ``build/`` folder or untracked files of a working copy. docs/
    (the measurement records, most of the tracked bytes) is left out: the build never reads it."""
    listed = _run(["git", "ls-files", "-z", "--", ".", ":!docs"], cwd=ROOT)
    if listed.returncode != 0:
        return ROOT
    for rel in filter(None, listed.stdout.split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def test_wheel_layout_and_import(tmp_path):
    src = _tracked_copy(tmp_path / "src")
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)], cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp_path.glob("andactl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "andactl/passes/__init__.py" in names and "andactl/formats/__init__.py" in names
    assert "andactl/kernels/__init__.py" in names and "andactl/evaluation/tasks/piqa.yaml" in names
    assert not any(n.split("/")[0] in ("passes", "formats", "kernels", "tests") for n in names)
    expected = _source_modules(src)
    missing = [m for m in expected if m not in names]
    assert not missing, f"in the checkout but not in the wheel (pyproject's packages / package-data): {missing}"
    extra = [n for n in names if n.startswith("andactl/") and n.endswith(".py") and n not in expected]
    assert not extra, f"in the wheel but not in the checkout: {extra}"
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    out = _run([sys.executable, "-c", PROBE], cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    assert all(p.startswith(str(site / "andactl")) for p in out.stdout.split())
    sub = "import andactl.dry_run.estimate as e, andactl.sweep.runner as r; print(e.__file__, r.__file__)"
    out = _run([sys.executable, "-c", sub], cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    assert all(p.startswith(str(site / "andactl")) for p in out.stdout.split()), out.stdout


def _source_modules(root: Path) -> list[str]:
    """Every .py file of the packages under ``root`` (andactl/ and the three root folders it maps as
    andactl.passes / .formats / .kernels) and every file their code reads at run time (the C++/CUDA
    sources the extension is built from, the lm-eval task files), named as it lies in a wheel."""
    roots = {"andactl": "andactl", "passes": "andactl/passes", "formats": "andactl/formats", "kernels": "andactl/kernels"}
    out = []
    for folder, prefix in roots.items():
        for f in sorted((root / folder).rglob("*.py")):
            rel = f.relative_to(root / folder)
            if "__pycache__" not in rel.parts and (f.parent / "__init__.py").is_file():
                out.append(f"{prefix}/{rel.as_posix()}")
    out += [f"andactl/kernels/csrc/{f.name}" for f in sorted((root / "kernels" / "csrc").iterdir()) if f.is_file()]
    out += [f"andactl/evaluation/tasks/{f.name}" for f in sorted((root / "andactl" / "evaluation" / "tasks").iterdir())
            if f.is_file() and f.suffix in (".yaml", ".py")]
    return out
