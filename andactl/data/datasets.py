"""Dataset names -> text rows or task documents: the local data directory first, the hub second.

The local layout is that of ``../shared/data`` (see its SOURCES.md). When a data directory is
configured (``--data-dir`` or ``ANDACTL_DATA_DIR``) only local files are read and a missing file
is a DataError naming what the directory has: never a silent substitution. With no data
directory configured, the Hugging Face hub is used (online users only).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from andactl.errors import DataError

log = logging.getLogger("andactl")

ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n{output}"
)
ALPACA_TEMPLATE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}"
)


def resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    """``data_dir`` if given, else ``$ANDACTL_DATA_DIR``, else None; a named dir must exist."""
    value = data_dir if data_dir not in (None, "") else os.environ.get("ANDACTL_DATA_DIR") or None
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"data directory not found: {path}")
    return path


def _wikitext_rows(path: Path) -> list[str]:
    """Rows as the HF ``wikitext-2-raw-v1`` dataset has them: every line, blank ones as ""."""
    return [line if line.strip() else "" for line in path.read_text(encoding="utf-8").splitlines(keepends=True)]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _alpaca_rows(path: Path) -> list[str]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return [
        (ALPACA_TEMPLATE_INPUT if r.get("input") else ALPACA_TEMPLATE).format(**r) for r in records
    ]


def _jsonl_text(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


@dataclass(frozen=True)
class TextDataset:
    """A text corpus: per split, candidate local files (first existing wins) and a hub fallback."""

    name: str
    splits: dict[str, tuple[str, ...]]
    reader: Callable[[Path], list[str]]
    hub: tuple[str, str | None, str]  # (path, config name, text column)
    hub_splits: dict[str, str] | None = None


TEXT_DATASETS: dict[str, TextDataset] = {
    "wikitext2": TextDataset(
        "wikitext2",
        {"test": ("wikitext2/wiki.test.raw",), "validation": ("wikitext2/wiki.valid.raw",), "train": ("wikitext2/wiki.train.raw",)},
        _wikitext_rows, ("Salesforce/wikitext", "wikitext-2-raw-v1", "text"),
    ),
    "ptb": TextDataset(
        "ptb",
        {"test": ("ptb/ptb.test.txt",), "validation": ("ptb/ptb.valid.txt",), "train": ("ptb/ptb.train.txt",)},
        _lines, ("ptb-text-only/ptb_text_only", None, "sentence"),
    ),
    "alpaca": TextDataset(
        "alpaca",
        {"train": ("alpaca/alpaca_data.json", "alpaca/alpaca_data_2000.json", "alpaca/alpaca_data_first335.json")},
        _alpaca_rows, ("tatsu-lab/alpaca", None, "text"),
    ),
    "c4": TextDataset(
        "c4",
        {"train": ("c4/c4-train.00000-of-01024.json.gz",), "validation": ("c4/c4-validation.00000-of-00008.json.gz",)},
        _jsonl_text, ("allenai/c4", "en", "text"),
    ),
}


def describe_dir(path: Path) -> str:
    """A short listing of what a data directory holds (for error messages)."""
    if not path.is_dir():
        return "nothing (missing)"
    items = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    return ", ".join(items[:20]) + (" ..." if len(items) > 20 else "") if items else "no files"


def local_file(data_dir: Path, dataset: str, candidates: tuple[str, ...], split: str) -> Path:
    """The first existing candidate under ``data_dir``; DataError listing the directory otherwise."""
    for rel in candidates:
        if (data_dir / rel).is_file():
            return data_dir / rel
    folder = data_dir / candidates[0].split("/")[0]
    raise DataError(
        f"{dataset}/{split}: none of {', '.join(candidates)} in data dir {data_dir} "
        f"(its {folder.name}/ holds: {describe_dir(folder)})"
    )


def data_file(dataset: str, split: str, data_dir: Path | str | None) -> Path | None:
    """The local file of ``dataset``/``split`` (None: no data directory, the hub is used); DataError
    for an unknown dataset or split, a file missing from the data directory, or (no data directory)
    a hub that cannot be reached with nothing of the dataset cached. Reads nothing."""
    if dataset not in TEXT_DATASETS:
        raise DataError(f"unknown dataset '{dataset}'; known: {', '.join(sorted(TEXT_DATASETS))}")
    spec = TEXT_DATASETS[dataset]
    if split not in spec.splits:
        raise DataError(f"dataset '{dataset}' has no split '{split}'; splits: {', '.join(spec.splits)}")
    data_dir = resolve_data_dir(data_dir)
    if data_dir is None:
        from andactl.models.hub import check_hub_dataset

        check_hub_dataset(spec.hub[0], f"{dataset}/{split}", spec.splits[split][0])
        return None
    return local_file(data_dir, dataset, spec.splits[split], split)


def load_text_rows(dataset: str, split: str, data_dir: Path | str | None) -> list[str]:
    """Text rows of ``dataset``/``split`` (see module docstring for the resolution order)."""
    spec = TEXT_DATASETS.get(dataset)
    path = data_file(dataset, split, data_dir)
    if path is not None:
        log.info("dataset %s/%s: %s", dataset, split, path)
        try:
            return spec.reader(path)
        except (ValueError, KeyError, TypeError, EOFError, OSError) as err:  # decode and JSON errors are ValueErrors
            # a damaged or foreign file (binary bytes, cut JSON, a record without its fields, a broken gzip)
            first = (str(err).strip().splitlines() or [""])[0][:120]
            raise DataError(f"{dataset}/{split}: {path} cannot be read as {dataset} text ({type(err).__name__}: "
                            f"{first}); replace it with an intact copy (the data folder's SOURCES.md names "
                            "its source)") from err
    return _hub_rows(spec, split)


def _hub_rows(spec: TextDataset, split: str) -> list[str]:
    hub_path, hub_name, column = spec.hub
    try:
        import datasets

        ds = datasets.load_dataset(hub_path, hub_name, split=split)
    except Exception as err:  # offline, missing, or refused: one clear line
        raise DataError(
            f"{spec.name}/{split}: no data directory configured (--data-dir / ANDACTL_DATA_DIR) and the "
            f"Hugging Face hub failed ({type(err).__name__}: {str(err).splitlines()[0][:160]})"
        ) from err
    return list(ds[column])
