"""Opens an artifact: the reader's model plus its tokenizer (``andactl.formats.reader`` does the
work; this module only adds the tokenizer and the typed records for a pipeline that continues)."""
from __future__ import annotations

from pathlib import Path

import torch

from andactl.errors import ArtifactError
from andactl.formats.reader import read_artifact, read_records
from andactl.formats.records import SECTION
from andactl.models.vector_math_warmup import warm_vector_math


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise ArtifactError(f"{path}: tokenizer files missing or unreadable ({type(err).__name__})") from err


def load_artifact(path: str | Path, dtype: torch.dtype | None = torch.float32, device: str | torch.device = "cpu"):
    """(model, tokenizer, meta) of the artifact at ``path``; ArtifactError on any inconsistency.
    ``meta`` is the config.json ``andactl`` section with the validated records under ``"records"``."""
    warm_vector_math()  # before the first multi-threaded unary op of the process (pytorch#188792)
    path = Path(path)
    model, config = read_artifact(path, dtype, device)
    meta = dict(config[SECTION])
    meta["records"] = read_records(config, path)
    return model, load_tokenizer(path), meta
