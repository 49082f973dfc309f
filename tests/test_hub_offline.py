"""A hub id or a hub dataset on a machine that cannot reach the Hugging Face hub: one line at once
(the hub client's retries took 30–50 s, a dataset's only after the model had loaded), unless the
local Hugging Face cache holds it: then a cached model loads without any request."""
from __future__ import annotations

import shutil
import threading
import time

import pytest
import torch
from cli_helpers import assert_error_line, invoke_cli

from andactl.models import hub


@pytest.fixture
def no_hub(monkeypatch):
    """The real probe against an endpoint that cannot resolve (RFC 2606 reserves .invalid)."""
    for name in (*hub.PROXY_VARS, "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    hub.unreachable.cache_clear()
    yield
    hub.unreachable.cache_clear()


def test_unreachable_names_why(no_hub, monkeypatch):
    assert hub.unreachable() == "hub.invalid does not resolve"
    hub.unreachable.cache_clear()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")  # nothing listens on port 1
    assert hub.unreachable().startswith("127.0.0.1:1 does not answer")
    hub.unreachable.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.unreachable() == "HF_HUB_OFFLINE is set"
    hub.unreachable.cache_clear()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # the proxy resolves the hub, not this machine
    assert hub.unreachable() is None


def test_a_name_lookup_that_hangs_is_bounded(no_hub, monkeypatch):
    """A broken resolver can hold getaddrinfo for tens of seconds, past the connect's timeout."""
    monkeypatch.setattr(hub, "PROBE_TIMEOUT_S", 0.2)

    def lookup_that_hangs(*args, **kwargs):
        time.sleep(3)
        raise OSError("answered too late")

    monkeypatch.setattr(hub.socket, "create_connection", lookup_that_hangs)
    t0 = time.perf_counter()
    assert hub.unreachable() == "hub.invalid does not answer within 0.4 s"
    assert time.perf_counter() - t0 < 2.0


def test_offline_hub_sources_are_refused_before_any_work(no_hub, tiny_hf_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", str(tmp_path / "empty-datasets"))
    line = ("reads as a Hugging Face hub id, but the hub cannot be reached (hub.invalid does not resolve) and it is not "
            "in the local Hugging Face cache")
    for args in (("eval", "org/model", "--tasks", "wikitext2"), ("slice", "org/model", "--ratio", "0.2", "-o", "out"),
                 ("slice", "org/model", "--ratio", "0.2", "-o", "out", "--dry-run"), ("inspect", "org/model")):
        assert_error_line(invoke_cli(*args), f"model 'org/model' {line}")
    assert_error_line(invoke_cli("recover", tiny_hf_dir, "--teacher", "org/teacher", "-o", "out"),
                      f"teacher model 'org/teacher' {line}")
    monkeypatch.delenv("ANDACTL_DATA_DIR", raising=False)
    assert_error_line(invoke_cli("eval", tiny_hf_dir, "--tasks", "wikitext2"),
                      "wikitext2/test: no data directory configured (--data-dir / ANDACTL_DATA_DIR) and the Hugging "
                      "Face hub cannot be reached (hub.invalid does not resolve) for 'Salesforce/wikitext'; point "
                      "--data-dir or ANDACTL_DATA_DIR at a folder holding wikitext2/wiki.test.raw")
    assert_error_line(invoke_cli("eval", tiny_hf_dir, "--tasks", "arc_easy"), "arc_easy: no data directory configured")
    assert_error_line(invoke_cli("slice", tiny_hf_dir, "--ratio", "0.2", "-o", "out"),
                      "alpaca/train: no data directory configured")
    assert not (tmp_path / "out").exists()
    # a dataset whose files the hub client has cached is left to the datasets library
    (tmp_path / "empty-cache" / "datasets--Salesforce--wikitext").mkdir(parents=True)
    hub.check_hub_dataset("Salesforce/wikitext", "wikitext2/test", "wikitext2/wiki.test.raw")
    with pytest.raises(Exception, match="tatsu-lab/alpaca"):
        hub.check_hub_dataset("tatsu-lab/alpaca", "alpaca/train", "alpaca/alpaca_data.json")


def test_lmeval_datasets_are_those_of_lmevals_task_definitions():
    import importlib.resources

    import yaml

    from andactl.evaluation.harness import ZERO_SHOT_TASKS
    from andactl.evaluation.local_tasks import LMEVAL_DATASETS

    tasks = importlib.resources.files("lm_eval") / "tasks"
    files = {"piqa": "piqa/piqa.yaml", "arc_easy": "arc/arc_easy.yaml", "arc_challenge": "arc/arc_easy.yaml",
             "hellaswag": "hellaswag/hellaswag.yaml", "winogrande": "winogrande/default.yaml"}
    assert set(LMEVAL_DATASETS) == set(ZERO_SHOT_TASKS)
    for task, rel in files.items():  # arc_challenge includes arc_easy's definition, dataset_path with it
        text = (tasks / rel).read_text()
        config = yaml.safe_load("\n".join(line for line in text.splitlines() if "!function" not in line))
        assert config["dataset_path"] == LMEVAL_DATASETS[task], task


def test_cached_hub_model_loads_offline_without_a_request(no_hub, tiny_hf_dir, tmp_path, monkeypatch):
    """A model in the hub client's cache layout (refs/main -> snapshots/REV) loads offline, and
    the load asks for no network name at all: neither the model files nor the hub client's own
    agent registry (which, fetched even for a read from the cache, retried for about 25 s)."""
    from andactl.models.loading import load_model

    cache = tmp_path / "hub-cache"
    repo = cache / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    shutil.copytree(tiny_hf_dir, repo / "snapshots" / ("0" * 40))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    assert hub.hub_model_kwargs("org/tiny") == {"local_files_only": True}  # the probe ran: hub.invalid
    lookups = []

    def no_lookup(host, *args, **kwargs):  # any request of the load would start with a name lookup
        if threading.current_thread() is threading.main_thread():  # not the hub client's own background fetches
            lookups.append(host)
        raise OSError(f"no lookup expected: {host}")

    monkeypatch.setattr("socket.getaddrinfo", no_lookup)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest's switch, read at import
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", False)
    loaded = load_model("org/tiny")
    assert lookups == []  # before go_offline: the hub client's own registry fetch, retried for about 25 s
    reference = load_model(str(tiny_hf_dir))
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, reference.model(ids).logits)
    assert loaded.kind == "hub"
