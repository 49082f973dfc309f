"""The one explicit context object that every pass receives."""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch

from andactl.formats.records import ArtifactRecords

if TYPE_CHECKING:  # pragma: no cover
    from andactl.data.calibration import CalibrationConfig
    from andactl.models.adapters import Adapter


@dataclass
class PassContext:
    """State a pipeline run threads through its passes.

    Invariants: ``model`` is the live module the passes edit in place; ``adapter`` wraps that same
    model; ``provided`` lists every capability provided so far (from the source artifact and from
    passes already run); ``records`` is the typed structural description of ``model`` (norms fused,
    SliceGPT widths, packed modules, activation hooks) that the artifact is written from and read
    back with (``andactl.formats.reader``): every pass that changes structure updates it;
    ``structure`` is the history of pass records (informational; rotate's plan for a later
    ``slice``); ``report`` only grows and is never a pass-to-pass channel;
    ``int4_weights`` and ``anda_bits`` carry tensors/choices between quantization passes (never
    into the JSON report).
    """

    model: torch.nn.Module
    adapter: "Adapter"
    tokenizer: Any
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    seed: int = 0
    data_dir: Path | None = None
    calibration_config: "CalibrationConfig | None" = None
    provided: set[str] = field(default_factory=set)
    structure: list[dict] = field(default_factory=list)
    records: ArtifactRecords = field(default_factory=lambda: ArtifactRecords(base_model_type=""))
    artifact_meta: dict = field(default_factory=dict)  # summaries written into config.json's andactl section
    original_parameters: int | None = None  # parameter count before fuse_norms (for slice's report)
    report: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    quiet: bool = False
    int4_weights: MutableMapping = field(default_factory=dict)  # qualified linear name -> formats.int4.Int4Weight (dict, or on disk when streamed)
    anda_bits: dict | None = None  # {"qkv","o","u","d"} -> M, or per-module overrides (see anda_search)
    attachments: dict[str, bytes] = field(default_factory=dict)  # extra files for the artifact (plots)
    store: Any = None  # where decoder layers live (andactl/models/layer_store.py); None: all resident
    activations: Any = None  # where calibration activations live (andactl/models/activation_buffers.py)
    _calibration: Any = None

    def activation_buffers(self):
        """Calibration activations between layers: ``keep(x, slot)`` (RAM unless spilled)."""
        if self.activations is None:
            from andactl.models.activation_buffers import ActivationBuffers

            self.activations = ActivationBuffers()
        return self.activations

    @property
    def layers(self):
        """The layer store passes walk decoder layers through: ``with ctx.layers.onload(i) as layer``
        (resident unless the run streams layer by layer)."""
        if self.store is None:
            from andactl.models.layer_store import ResidentStore

            self.store = ResidentStore(self.adapter)
        return self.store

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger("andactl")

    def calibration(self):
        """Calibration batches (``CalibrationData``), built once per context and then reused; under
        torchrun only this rank's share of the samples (see ``andactl.distributed``). Calibration
        ``self`` is sampled from ``self.model`` as it is at this first call (every rank samples the
        same ids from the same seed)."""
        if self._calibration is None:
            from andactl.data.calibration import CalibrationConfig, build_calibration
            from andactl.data.model_text import model_samples
            from andactl.distributed import shard

            cfg = self.calibration_config or CalibrationConfig()
            sampled = model_samples(cfg.dataset, cfg.samples)
            if sampled:
                self.log.info("calibration: sampling %d sequences of %d tokens from the model itself", sampled,
                              cfg.seqlen)
            full = build_calibration(cfg, self.tokenizer, self.data_dir, model=self.model, device=self.device)
            self._calibration = shard(full)  # this rank's share
            self.provenance["calibration"] = cfg.to_dict()
        return self._calibration

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator:
        """Yields ``advance(n=1)``; draws a rich progress bar on stderr unless quiet."""
        if self.quiet or not sys.stderr.isatty():
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from andactl.consoles import stderr_console

        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=stderr_console(), transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)
