"""Training text for recovery: a text dataset's training split, text sampled from the teacher, or
half of each (``mix``).

Invariants: an evaluation split (a perplexity task's split, any zero-shot task, any ``test``
split) is refused before anything is read; the held-out sequences come from rows (or samples)
disjoint from the training ones; the same (source, tokenizer, sizes, seed) gives the same ids; when
a dataset holds fewer training sequences than the steps need, they are repeated (epochs) so that
each distinct sequence occurs ⌊n/d⌋ or ⌈n/d⌉ times among the n training rows.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from andactl.data.model_text import MIX, MIX_DATASET, SELF, model_samples, model_sampling_rows, sample_from_model
from andactl.errors import ConfigError, DataError

HELD_OUT_FRACTION = 0.1  # of the training rows kept aside for the held-out loss

log = logging.getLogger("andactl")


@dataclass
class TrainText:
    """``train`` [n, seqlen] and ``held_out`` [m, seqlen] token ids (no padding); ``order`` [n]
    (repeated data only, ``epoch_order``): training row i is row ``order[i]`` of ``train[:distinct]``,
    the first epoch being those rows in order."""

    train: torch.Tensor
    held_out: torch.Tensor
    source: str
    order: torch.Tensor | None = None

    @property
    def distinct(self) -> int:
        """How many of the training rows are different sequences (all of them unless repeated)."""
        return int(self.train.shape[0]) if self.order is None else int(self.order.max()) + 1

    def unique_rows(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the distinct training sequences, ``order``): work done per sequence (the teacher's
        targets) is done once, then indexed by ``order``; (``train``, None) when nothing repeats."""
        return (self.train, None) if self.order is None else (self.train[:self.distinct], self.order)

    def to_dict(self) -> dict:
        n, distinct = int(self.train.shape[0]), self.distinct
        return {"source": self.source, "train_sequences": n, "distinct_sequences": distinct,
                "epochs": round(n / distinct, 3), "held_out_sequences": int(self.held_out.shape[0]),
                "seqlen": int(self.train.shape[1])}


def parse_train_data(spec: str) -> tuple[str, str]:
    """``"alpaca"`` / ``"ptb/valid"`` / ``"self"`` / ``"mix"`` -> (dataset, split); refuses evaluation splits."""
    from andactl.evaluation.harness import PPL_TASKS, TASK_ALIASES, ZERO_SHOT_TASKS

    if spec in (SELF, MIX):
        return spec, ""
    name, _, split = spec.partition("/")
    name = TASK_ALIASES.get(name, name)
    split = split or "train"
    if name in ZERO_SHOT_TASKS:
        raise ConfigError(f"train data '{spec}' is a zero-shot evaluation set; never train on it")
    if split == "test" or (name, split) in PPL_TASKS.values():
        raise ConfigError(f"train data '{spec}' is the evaluation split {name}/{split}; never train on it")
    from andactl.data.datasets import TEXT_DATASETS

    if name not in TEXT_DATASETS:
        raise ConfigError(f"unknown train data '{spec}'; use self, mix or one of {', '.join(sorted(TEXT_DATASETS))}[/split]")
    if split not in TEXT_DATASETS[name].splits:
        raise ConfigError(f"train data '{spec}': dataset {name} has no split '{split}' "
                          f"(splits: {', '.join(TEXT_DATASETS[name].splits)})")
    return name, split


def check_available(spec: str, data_dir: Path | None) -> None:
    """DataError (naming what the data directory holds) if a local dataset file is missing; cheap,
    for checking before any model is loaded. Nothing to check for ``self`` or without a data dir;
    ``mix`` checks its dataset's training split."""
    from andactl.data.datasets import TEXT_DATASETS, local_file

    name, split = parse_train_data(MIX_DATASET if spec == MIX else spec)
    if name != SELF and data_dir is not None:
        local_file(data_dir, name, TEXT_DATASETS[name].splits[split], split)


def dataset_text(spec: str, tokenizer, train_sequences: int, held_out: int, seqlen: int, seed: int,
                 data_dir: Path | None) -> TrainText:
    """Sequences of exactly ``seqlen`` tokens from a dataset split (SliceGPT's sampler); the
    held-out ones come from the last ``HELD_OUT_FRACTION`` of the rows, never used for training.
    If the split yields fewer than ``train_sequences``, they are repeated in epochs (``epoch_order``)."""
    from andactl.data.calibration import sample_token_runs
    from andactl.data.datasets import load_text_rows

    name, split = parse_train_data(spec)
    rows = [r for r in load_text_rows(name, split, data_dir) if r.strip()]
    cut = max(1, int(len(rows) * (1 - HELD_OUT_FRACTION)))
    train = sample_token_runs(rows[:cut], tokenizer, train_sequences, seqlen, seed)
    kept = sample_token_runs(rows[cut:], tokenizer, held_out, seqlen, seed + 1)
    if not train or len(kept) < held_out:
        raise DataError(f"train data {name}/{split} yields {len(train)} training + {len(kept)} held-out sequences of "
                        f"{seqlen} tokens; at least 1 + {held_out} needed (lower --held-out/--seqlen)")
    ids, order = torch.tensor(train, dtype=torch.long), None
    if len(train) < train_sequences:
        log.info("train data %s/%s: %d distinct sequences of %d tokens for %d needed; repeated (%.2f epochs)",
                 name, split, len(train), seqlen, train_sequences, train_sequences / len(train))
        order = epoch_order(len(train), train_sequences, seed)
        ids = ids[order]
    return TrainText(ids, torch.tensor(kept, dtype=torch.long), f"{name}/{split}", order=order)


def epoch_order(n: int, count: int, seed: int) -> torch.Tensor:
    """``count`` indices into ``n`` rows: the first ``count`` of 0..n-1 in order, then a permutation
    drawn from ``seed + epoch`` for each later epoch (so a partial last epoch repeats a seeded choice
    of rows). Every row occurs ⌊count/n⌋ or ⌈count/n⌉ times; the training loop shuffles the rows itself."""
    orders = [torch.arange(n)]
    for epoch in range(1, -(-count // n)):
        orders.append(torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)))
    return torch.cat(orders)[:count]


def self_text(teacher, vocab_size: int, train_sequences: int, held_out: int, seqlen: int, seed: int,
              device: str | torch.device = "cpu") -> TrainText:
    """Teacher-sampled text over token ids ``< vocab_size``; the held-out sequences are further
    independent samples. Sampled ``model_sampling_rows`` sequences at a time (the ids depend on it)."""
    count, t0 = train_sequences + held_out, time.perf_counter()
    rows = model_sampling_rows(teacher, seqlen, count)
    ids = sample_from_model(teacher, vocab_size, count, seqlen, seed, rows, device=device)
    took = time.perf_counter() - t0
    log.info("recover: sampled %d sequences of %d tokens from the teacher in %.1f s (%.0f tokens/s, %d at a time)",
             count, seqlen, took, count * seqlen / max(took, 1e-9), rows)
    return TrainText(ids[:train_sequences], ids[train_sequences:], SELF)


def mixed_text(teacher, vocab_size: int, tokenizer, train_sequences: int, held_out: int, seqlen: int, seed: int,
               data_dir: Path | None, device: str | torch.device = "cpu") -> TrainText:
    """``mix``: of the training and of the held-out sequences, the first ``n // 2`` are MIX_DATASET's
    (``dataset_text``, repeated in epochs if it holds too few) and the rest are sampled from the
    teacher (``self_text``), as ``--cal-data mix`` splits calibration text. The distinct rows come
    first, in that order, then the dataset's repeats (the TrainText invariant); the training loop
    shuffles the rows."""
    own, own_held = model_samples(MIX, train_sequences), model_samples(MIX, held_out)  # RecoverConfig: 2+ rows
    data = dataset_text(MIX_DATASET, tokenizer, train_sequences - own, held_out - own_held, seqlen, seed, data_dir)
    sampled = self_text(teacher, vocab_size, own, own_held, seqlen, seed, device)
    rows, order = data.unique_rows()
    distinct = torch.cat([rows, sampled.train])
    held = torch.cat([t.reshape(-1, seqlen) for t in (data.held_out, sampled.held_out)])
    if order is None:
        return TrainText(distinct, held, MIX)
    d = rows.shape[0]
    order = torch.cat([torch.arange(d + own), order[d:]])  # order[:d] is arange(d): the first epoch in order
    return TrainText(distinct[order], held, MIX, order=order)
