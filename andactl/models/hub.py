"""Whether the Hugging Face hub can be reached, asked once per process before a hub id or a hub
dataset is used.

Offline, the hub client retries each file with back-off: a hub id took about 50 s and a dataset
without --data-dir about 30 s (after the model had loaded) before failing. One TCP connect to the
hub's endpoint, with a short timeout, answers the same question at once.

Invariants: nothing here downloads or reads a file. A source is refused only when the hub cannot be
reached *and* nothing of it is in the local Hugging Face cache; a cached model is then read with
``local_files_only`` and a cached dataset by the datasets library, both with the libraries switched to
offline mode (``go_offline``), so that no request and no retry is made. Behind a proxy
(any ``*_PROXY`` variable) the endpoint is not probed: the proxy, not this machine, resolves it.
"""
from __future__ import annotations

import functools
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from andactl.errors import DataError, ModelError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # one TCP connect; the hub answers in well under a second when it is reachable
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
TRUE_WORDS = ("1", "ON", "YES", "TRUE")  # huggingface_hub's reading of HF_HUB_OFFLINE


@functools.lru_cache(maxsize=1)
def unreachable() -> str | None:
    """Why the hub cannot be reached from here ("huggingface.co does not resolve", "HF_HUB_OFFLINE
    is set", ...), or None when it may be. Probed once per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in TRUE_WORDS:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(name) for name in PROXY_VARS):
        return None
    url = urlsplit(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    host = url.hostname or ""
    port = url.port or (80 if url.scheme == "http" else 443)
    answer: list[str | None] = []
    # in a thread: the connect's timeout does not bound the name lookup, which a broken resolver
    # can hold for tens of seconds
    probe = threading.Thread(target=lambda: answer.append(_connect(host, port)), daemon=True)
    probe.start()
    probe.join(2 * PROBE_TIMEOUT_S)
    return answer[0] if answer else f"{host} does not answer within {2 * PROBE_TIMEOUT_S:g} s"


def _connect(host: str, port: int) -> str | None:
    """None when a TCP connection to ``host:port`` opens within PROBE_TIMEOUT_S, else why not."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return None
    except socket.gaierror:
        return f"{host} does not resolve"
    except OSError as err:
        return f"{host}:{port} does not answer ({err.strerror or type(err).__name__})"


def go_offline() -> None:
    """Switches the hub client and the datasets library to offline mode for this process, what
    HF_HUB_OFFLINE=1 does: with the hub unreachable, even a read from the cache made the hub client
    fetch its agent registry first, about 25 s of retries (both read these flags at call time)."""
    import datasets
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True


def _model_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def hub_model_kwargs(source: str, role: str = "model") -> dict:
    """``from_pretrained`` keyword arguments for the hub id ``source``: {} when the hub may be
    reached, ``local_files_only`` when it cannot but the model is in the local cache; ModelError
    (one line, at once) when it can neither be downloaded nor read from the cache."""
    reason = unreachable()
    if reason is None:
        return {}
    if _model_cached(source):
        go_offline()
        return {"local_files_only": True}
    from andactl.models.loading import ALIASES

    raise ModelError(f"{role} '{source}' reads as a Hugging Face hub id, but the hub cannot be reached ({reason}) "
                     f"and it is not in the local Hugging Face cache; use a local folder, a .gguf file or one of: "
                     f"{', '.join(ALIASES)}")


def _dataset_cached(repo_id: str) -> bool:
    """True when anything of the hub dataset ``repo_id`` may be in the local caches (the hub's file
    cache or the datasets library's prepared copies); a cheap look at folder names only."""
    import datasets
    from huggingface_hub import constants

    org, _, name = repo_id.partition("/")
    if (Path(constants.HF_HUB_CACHE) / f"datasets--{org}--{name}").is_dir():
        return True
    prepared = Path(datasets.config.HF_DATASETS_CACHE)
    key = f"{org}___{name}".lower().replace("-", "_")
    return prepared.is_dir() and any(entry.name.lower().replace("-", "_") == key for entry in prepared.iterdir())


def check_hub_dataset(repo_id: str, what: str, local_file: str) -> None:
    """DataError (one line, at once) when ``what`` (e.g. "wikitext2/test") is to come from the hub
    dataset ``repo_id``, the hub cannot be reached and nothing of it is cached; ``local_file``: the
    file a data directory would hold instead."""
    reason = unreachable()
    if reason is None:
        return
    if _dataset_cached(repo_id):
        go_offline()
        return
    raise DataError(f"{what}: no data directory configured (--data-dir / ANDACTL_DATA_DIR) and the Hugging Face hub "
                    f"cannot be reached ({reason}) for '{repo_id}'; point --data-dir or ANDACTL_DATA_DIR at a folder "
                    f"holding {local_file}")
