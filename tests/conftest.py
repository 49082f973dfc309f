"""Shared fixtures. Tests never touch the network: the hub is switched off here."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """Every test sees an idle machine: a dry run's busy-CPU warning (andactl/dry_run/rates.py) would
    otherwise depend on what else loads the CI host (tests that need a load set their own)."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data directory ($ANDACTL_DATA_DIR or ../shared/data next to the repository)."""
    path = Path(os.environ.get("ANDACTL_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"no data directory at {path} (set ANDACTL_DATA_DIR)")
    return path.resolve()


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory) -> Path:
    """A tiny random llama saved as a plain HF folder with a character tokenizer."""
    from tiny_models import tiny_model
    from tiny_tokenizer import char_tokenizer

    model, _ = tiny_model("llama")
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(str(path))
    char_tokenizer().save_pretrained(str(path))
    return path
