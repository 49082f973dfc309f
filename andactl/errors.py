"""User-facing errors: the CLI prints ``str(err)`` as one line on stderr and exits non-zero."""
from __future__ import annotations

import errno


class AndaError(Exception):
    """Base class for every error that is the user's input, not a bug. Message is one line."""

    exit_code = 2


class ConfigError(AndaError):
    """A recipe, pass config or flag value is invalid."""


class ModelError(AndaError):
    """A model source cannot be resolved, loaded or is of an unsupported architecture."""


class DataError(AndaError):
    """A dataset or split is unknown or missing from the data directory."""


class ArtifactError(AndaError):
    """An andactl artifact is corrupt, foreign, or of another format version."""


class WriteError(AndaError):
    """The place a result goes cannot take it: the disk is full, a quota is reached, the filesystem
    is read-only (the machine's state, not a bug)."""


# the OSError numbers that mean "this location cannot take the data" rather than a bug
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def storage_error(err: BaseException) -> bool:
    """True for an OSError whose number is one of STORAGE_ERRNOS (disk full and the like)."""
    return isinstance(err, OSError) and err.errno in STORAGE_ERRNOS


class NumericsError(AndaError):
    """Values a format cannot represent (NaN, Inf, FP16 overflow)."""


class SearchError(AndaError):
    """A search found nothing acceptable (and no fall-back was asked for)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT (exit 130) or SIGTERM (exit 143) stopped the run; ``message`` is what the user sees."""

    def __init__(self, exit_code: int = 130, message: str = "interrupted: nothing was written"):
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def interrupt_message(err: KeyboardInterrupt) -> tuple[str, int]:
    """The one line and exit code for an interruption (plain Ctrl-C: 130, nothing written)."""
    if isinstance(err, Interrupted):
        return err.message, err.exit_code
    return "interrupted: nothing was written", 130
