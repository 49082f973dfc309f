"""Zero-shot task documents read from the local data directory, in the exact record layout of
the Hugging Face datasets that lm-eval's official task definitions read.

Each loader takes ``data_dir`` (absolute path) and ignores other keyword arguments, because
lm-eval calls ``custom_dataset(**metadata, **dataset_kwargs)``.
"""
from __future__ import annotations

import bz2
import functools
import json
from pathlib import Path

import datasets

from andactl.data.datasets import local_file
from andactl.errors import AndaError, DataError


ARC_SPLITS = {"train": "Train", "validation": "Dev", "test": "Test"}  # lm-eval's split -> the ARC file's


def _arc_file(subset: str, split: str) -> str:
    return f"arc/{subset}/{subset}-{ARC_SPLITS[split]}.jsonl"


# (file under the data directory, split it belongs to) of every file each task's loader reads
TASK_FILES = {
    "piqa": (("piqa/valid.jsonl", "validation"), ("piqa/valid-labels.lst", "validation")),
    "arc_easy": tuple((_arc_file("ARC-Easy", s), s) for s in ARC_SPLITS),
    "arc_challenge": tuple((_arc_file("ARC-Challenge", s), s) for s in ARC_SPLITS),
    "hellaswag": (("hellaswag/hellaswag_val_full.txt.bz2", "validation"),),
    "winogrande": (("winogrande/dev.jsonl", "validation"),),
}

# the Hugging Face dataset lm-eval's official definition of each task reads when no data directory is set
LMEVAL_DATASETS = {"piqa": "baber/piqa", "arc_easy": "allenai/ai2_arc", "arc_challenge": "allenai/ai2_arc",
                   "hellaswag": "Rowan/hellaswag", "winogrande": "allenai/winogrande"}


def check_files(task: str, data_dir: Path) -> None:
    """DataError (``local_file``'s: the missing file and what its folder holds) unless every file
    ``task``'s loader reads is in ``data_dir``; reads none of them. Run before a model loads."""
    for rel, split in TASK_FILES[task]:
        local_file(data_dir, task, (rel,), split)


def _jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file; DataError naming the file and line of one that is not JSON."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{i}: not a JSON record ({err.msg})") from err
    return out


def _layout(task: str):
    """Turns a record the loader cannot read (a missing field, a bad label, a damaged archive) into
    one DataError naming ``task``: the user's data files, not andactl, are at fault."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except AndaError:
                raise
            except (KeyError, IndexError, TypeError, ValueError, OSError, EOFError) as err:  # ValueError: bad UTF-8 too
                raise DataError(f"{task}: the local data files do not have the expected layout "
                                f"({type(err).__name__}: {str(err).strip()[:120]})") from err
        return inner
    return wrap


@_layout("piqa")
def piqa_records(data_dir: Path) -> list[dict]:
    """PIQA validation: {goal, sol1, sol2, label} with label from valid-labels.lst."""
    (docs_file, _), (labels_file, _) = TASK_FILES["piqa"]
    docs = _jsonl(local_file(data_dir, "piqa", (docs_file,), "validation"))
    labels = local_file(data_dir, "piqa", (labels_file,), "validation").read_text().split()
    if len(labels) != len(docs):
        raise DataError(f"piqa: {len(docs)} documents in valid.jsonl but {len(labels)} labels in valid-labels.lst")
    return [{"goal": d["goal"], "sol1": d["sol1"], "sol2": d["sol2"], "label": int(y)} for d, y in zip(docs, labels)]


@_layout("arc")
def arc_records(data_dir: Path, subset: str, split: str) -> list[dict]:
    """ARC in the HF ``allenai/ai2_arc`` layout: {id, question, choices{text,label}, answerKey}."""
    out = []
    for r in _jsonl(local_file(data_dir, subset.lower(), (_arc_file(subset, split),), split)):
        choices = r["question"]["choices"]
        out.append({
            "id": r["id"], "question": r["question"]["stem"],
            "choices": {"text": [c["text"] for c in choices], "label": [c["label"] for c in choices]},
            "answerKey": r["answerKey"],
        })
    return out


@_layout("hellaswag")
def hellaswag_records(data_dir: Path) -> list[dict]:
    """HellaSwag validation from llama.cpp's cleaned 6-line layout: {query, choices, label}.

    The text is already cleaned as lm-eval's ``preprocess`` does; the one difference from
    lm-eval's ``process_docs`` is that ``ctx_b`` is not re-capitalised (the layout keeps ``ctx``).
    """
    path = local_file(data_dir, "hellaswag", (TASK_FILES["hellaswag"][0][0],), "validation")
    lines = bz2.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return [
        {"query": lines[i], "label": int(lines[i + 1]), "choices": lines[i + 2 : i + 6]}
        for i in range(0, len(lines) - 5, 6)
    ]


@_layout("winogrande")
def winogrande_records(data_dir: Path) -> list[dict]:
    """WinoGrande (xl) dev = lm-eval's validation split: {sentence, option1, option2, answer}."""
    docs = _jsonl(local_file(data_dir, "winogrande", (TASK_FILES["winogrande"][0][0],), "validation"))
    return [{k: d[k] for k in ("sentence", "option1", "option2", "answer")} for d in docs]


def _dd(**splits: list[dict]) -> datasets.DatasetDict:
    return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})


def piqa(data_dir: str, **_) -> datasets.DatasetDict:
    return _dd(validation=piqa_records(Path(data_dir)))


def arc_easy(data_dir: str, **_) -> datasets.DatasetDict:
    d = Path(data_dir)
    return _dd(**{s: arc_records(d, "ARC-Easy", s) for s in ARC_SPLITS})


def arc_challenge(data_dir: str, **_) -> datasets.DatasetDict:
    d = Path(data_dir)
    return _dd(**{s: arc_records(d, "ARC-Challenge", s) for s in ARC_SPLITS})


def hellaswag(data_dir: str, **_) -> datasets.DatasetDict:
    return _dd(validation=hellaswag_records(Path(data_dir)))


def winogrande(data_dir: str, **_) -> datasets.DatasetDict:
    return _dd(validation=winogrande_records(Path(data_dir)))
