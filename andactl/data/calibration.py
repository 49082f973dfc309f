"""Calibration batches, SliceGPT convention: seeded random runs of consecutive rows joined with
"\\n\\n" until ``seqlen`` tokens, truncated to exactly ``seqlen``; or, for the dataset ``self``,
sequences sampled from the model being compressed (``andactl/data/model_text.py``); ``mix`` is half
of each (alpaca first)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

import torch

from andactl.errors import ConfigError, DataError


@dataclass
class CalibrationConfig:
    """Which text, how many sequences of how many tokens, in batches of what size."""

    dataset: str = "alpaca"
    split: str = "train"
    samples: int = 128
    seqlen: int = 2048
    batch_size: int = 16
    seed: int = 42

    def validate(self) -> None:
        for name in ("samples", "seqlen", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"calibration {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CalibrationData:
    """``input_ids`` and ``attention_mask`` of shape [samples, seqlen]; mask 0 marks padding.
    ``first_sample``: the index of row 0 in the whole calibration set (0 unless this is one rank's
    share, ``distributed.shard``), so per-sample randomness can follow the sample, not the rank."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    batch_size: int
    first_sample: int = 0

    @property
    def num_samples(self) -> int:
        return self.input_ids.shape[0]

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Yields ``{"input_ids", "attention_mask"}`` slices of at most ``batch_size`` rows, in order."""
        for i in range(0, self.num_samples, self.batch_size):
            yield {
                "input_ids": self.input_ids[i : i + self.batch_size],
                "attention_mask": self.attention_mask[i : i + self.batch_size],
            }

    def __len__(self) -> int:
        return (self.num_samples + self.batch_size - 1) // self.batch_size


def sample_token_runs(rows: list[str], tokenizer, samples: int, seqlen: int, seed: int) -> list[list[int]]:
    """SliceGPT's sampler: pick a random start row, append consecutive rows (joined by "\\n\\n")
    until ``seqlen`` tokens, drop the used rows, repeat; runs shorter than ``seqlen`` are dropped.

    Deterministic for a given (rows, tokenizer, samples, seqlen, seed)."""
    rows = [r for r in rows if r.strip()]
    gen = torch.Generator().manual_seed(seed)
    indices = list(range(len(rows)))
    runs: list[list[int]] = []
    while len(runs) < samples and indices:
        start = int(torch.randint(0, len(indices), (1,), generator=gen))
        idx, ids = start, []
        while len(ids) < seqlen and idx < len(indices):
            sep = "" if not ids else "\n\n"
            ids += tokenizer.encode(sep + rows[indices[idx]], add_special_tokens=False)
            idx += 1
        indices = indices[:start] + indices[idx:]
        if len(ids) >= seqlen:
            runs.append(ids[:seqlen])
    return runs


def build_calibration(cfg: CalibrationConfig, tokenizer, data_dir: Path | None, model=None,
                      device: str | torch.device = "cpu") -> CalibrationData:
    """Loads ``cfg.dataset``/``cfg.split`` and samples calibration sequences from it; for the
    dataset ``self`` samples ``cfg.samples`` sequences from ``model`` (which must then be given:
    the model as it is when calibration is first needed, i.e. before any pass changed its function);
    for ``mix``, the first ``cfg.samples // 2`` sequences are those alpaca/``cfg.split`` gives for
    that many samples and the rest are sampled from ``model`` (same seed)."""
    from andactl.data.datasets import load_text_rows
    from andactl.data.model_text import (MIX, MIX_DATASET, SELF, model_samples, model_vocab, sample_from_model,
                                         samples_model)

    cfg.validate()
    if samples_model(cfg.dataset) and model is None:
        raise ConfigError(f"calibration data '{cfg.dataset}' is sampled from the model; no model was given")
    if cfg.dataset == MIX:
        own = model_samples(MIX, cfg.samples)
        parts = []
        if cfg.samples > own:  # the alpaca half first
            parts.append(build_calibration(replace(cfg, dataset=MIX_DATASET, samples=cfg.samples - own), tokenizer,
                                           data_dir))
        parts.append(build_calibration(replace(cfg, dataset=SELF, samples=own), tokenizer, data_dir,
                                       model=model, device=device))
        ids = torch.cat([p.input_ids for p in parts])
        return CalibrationData(ids, torch.ones_like(ids), cfg.batch_size)
    if cfg.dataset == SELF:
        ids = sample_from_model(model, model_vocab(model, tokenizer), cfg.samples, cfg.seqlen, cfg.seed,
                                batch_size=cfg.batch_size, device=device)
        return CalibrationData(ids, torch.ones_like(ids), cfg.batch_size)
    rows = load_text_rows(cfg.dataset, cfg.split, data_dir)
    runs = sample_token_runs(rows, tokenizer, cfg.samples, cfg.seqlen, cfg.seed)
    if not runs:
        raise DataError(
            f"calibration set {cfg.dataset}/{cfg.split} has too little text for one sequence of {cfg.seqlen} tokens"
        )
    if len(runs) < cfg.samples:
        import logging

        logging.getLogger("andactl").warning(
            "calibration set %s/%s yields only %d of the %d requested sequences of %d tokens",
            cfg.dataset, cfg.split, len(runs), cfg.samples, cfg.seqlen,
        )
    ids = torch.tensor(runs, dtype=torch.long)
    return CalibrationData(ids, torch.ones_like(ids), cfg.batch_size)
