"""Checks that run before any model is loaded or any pass runs, so that a bad input costs
seconds, not a calibration run. Each failure is one AndaError line.

Checked: the model source exists and is a supported architecture; the calibration dataset and
split exist (an evaluation split is refused for calibration); the evaluation tasks (also a
recipe's ``eval:`` block); the output location (formats/output_dir.check_output); sequence
lengths against the model's ``max_position_embeddings`` (config only); free disk space against
the artifact's estimated size.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from andactl.errors import ConfigError, DataError, ModelError
from andactl.instruments import megabytes

DISK_MARGIN = 1.1  # artifact <= source weights in float32 plus tokenizer files; 10% headroom


def model_source(source: str) -> tuple[str, Path | None]:
    """(kind, folder with config.json or None) of a model source without loading it; ModelError
    for a source ``load_model`` would refuse. Kinds: alias, artifact, hf, gguf, hub."""
    from andactl.models.loading import (ALIASES, alias_file, check_gguf, check_hf_config, gguf_cache_target, hub_id,
                                        not_a_model, unknown_model)

    path = Path(source).expanduser()
    if source in ALIASES:
        cached = gguf_cache_target(alias_file(source))
        return "alias", cached if (cached / "config.json").is_file() else None
    if path.is_dir() and (path / "config.json").is_file():
        config = _config(path)
        from andactl.formats.artifact import SECTION

        if SECTION not in config:
            check_hf_config(config, path)
        return ("artifact" if SECTION in config else "hf"), path
    if path.is_file() and path.suffix == ".gguf":
        check_gguf(path)
        cached = gguf_cache_target(path.resolve())
        return "gguf", cached if (cached / "config.json").is_file() else None
    if path.exists():
        raise not_a_model(source)
    if hub_id(source):
        from andactl.models.hub import hub_model_kwargs

        hub_model_kwargs(source)  # offline and not cached: refused now, not after the hub client's retries
        return "hub", None
    raise unknown_model(source)


def _config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"{folder / 'config.json'} is not readable JSON ({type(err).__name__})") from err
    if not isinstance(config, dict):
        raise ModelError(f"{folder / 'config.json'} is not a JSON object")
    return config


def max_positions(folder: Path | None) -> int | None:
    """The model's context length from its config.json (None when unknown)."""
    if folder is None:
        return None
    value = _config(folder).get("max_position_embeddings")
    return value if isinstance(value, int) and value > 0 else None


def check_seqlen(folder: Path | None, seqlen: int, flag: str) -> None:
    """ConfigError if ``seqlen`` exceeds the model's context length."""
    limit = max_positions(folder)
    if limit is not None and seqlen > limit:
        raise ConfigError(f"{flag} {seqlen} exceeds the model's context length (max_position_embeddings {limit}); "
                          f"use {flag} {limit} or less")


def check_topk(folder: Path | None, k: int, flag: str) -> None:
    """ConfigError if ``k`` tokens per position exceed the model's vocabulary (its config's vocab_size)."""
    vocab = _config(folder).get("vocab_size") if folder is not None else None
    if isinstance(vocab, int) and k > vocab:
        raise ConfigError(f"{flag} {k} exceeds the vocabulary ({vocab} tokens)")


def check_prune(folder: Path | None, step: dict) -> None:
    """ConfigError if a ``prune_mlp`` step keeps no neuron (or removes none) of the MLP width its config names."""
    from andactl.passes.prune_mlp import WIDTH_KEYS, kept_neurons

    config = _config(folder) if folder is not None else {}
    width = next((config[k] for k in WIDTH_KEYS if isinstance(config.get(k), int)), None)
    if width is not None:
        kept_neurons(width, float(step["ratio"]), int(step["round_to"]))


def check_calibration(calibration: dict, data_dir) -> None:
    """The calibration dataset/split exists (locally when a data dir is set) and is not an
    evaluation split; ``self`` (text sampled from the model) needs neither, ``mix`` needs alpaca's split."""
    from andactl.data.datasets import data_file
    from andactl.data.model_text import MIX, MIX_DATASET, SELF
    from andactl.evaluation.harness import PPL_TASKS

    dataset, split = calibration.get("dataset", "alpaca"), calibration.get("split", "train")
    if dataset == SELF:
        return  # sampled from the model: no file to find, never an evaluation split
    if dataset == MIX:
        dataset = MIX_DATASET  # its other half is sampled from the model
    data_file(str(dataset), str(split), data_dir)
    if (dataset, split) in set(PPL_TASKS.values()):
        raise DataError(f"{dataset}/{split} is an evaluation split: calibrating on it would leak the test set; "
                        "use alpaca/train or ptb/validation")


def check_tasks(tasks: str) -> list[str]:
    from andactl.evaluation.harness import parse_tasks

    if not isinstance(tasks, str):
        raise ConfigError(f"eval tasks must be a comma-separated string like 'wikitext2,piqa', got {tasks!r}")
    return parse_tasks(tasks)


def check_task_data(tasks: list[str], data_dir) -> None:
    """DataError unless every file ``tasks`` read is in the data directory (none set: unless the hub
    can be reached or the task's hub dataset is cached): the perplexity texts and each zero-shot
    task's files. Reads none."""
    from andactl.data.datasets import data_file, resolve_data_dir
    from andactl.evaluation.harness import PPL_TASKS, ZERO_SHOT_TASKS
    from andactl.evaluation.local_tasks import LMEVAL_DATASETS, TASK_FILES, check_files
    from andactl.models.hub import check_hub_dataset

    data_dir = resolve_data_dir(data_dir)
    for task in tasks:
        if task in PPL_TASKS:
            data_file(*PPL_TASKS[task], data_dir)
        elif task in ZERO_SHOT_TASKS and data_dir is not None:
            check_files(task, data_dir)
        elif task in ZERO_SHOT_TASKS:
            check_hub_dataset(LMEVAL_DATASETS[task], task, TASK_FILES[task][0][0])


EVAL_KEYS = ("tasks", "limit", "seqlen", "backend")  # a recipe's eval: block, as `andactl eval` takes them


def check_eval_spec(spec) -> None:
    """ConfigError for a recipe's ``eval:`` block that ``evaluate`` would refuse only after the run
    and its write: not a mapping, an unknown key, a limit or seqlen that is no positive integer (a
    seqlen under 8, as `andactl eval --seqlen`), an unknown kernel backend."""
    from andactl.kernels.backend import BACKENDS

    if not isinstance(spec, dict):
        raise ConfigError("'eval' must be a mapping like {tasks: wikitext2, limit: 4}")
    unknown = sorted(set(spec) - set(EVAL_KEYS))
    if unknown:
        raise ConfigError(f"eval: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(EVAL_KEYS)}")
    for key, least in (("limit", 1), ("seqlen", 8)):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ConfigError(f"eval: {key} must be an integer >= {least}, got {value!r}")
    if spec.get("backend", "auto") not in BACKENDS:
        raise ConfigError(f"eval: unknown backend {spec['backend']!r}; choose from {', '.join(BACKENDS)}")


def weights_bytes(kind: str, folder: Path | None, source: str) -> int | None:
    """Bytes of the source's weight files (an upper bound for the artifact's); None if unknown."""
    if folder is not None:
        return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    if kind in ("alias", "gguf"):
        from andactl.models.loading import alias_file

        gguf = alias_file(source) if kind == "alias" else Path(source).expanduser()
        return gguf.stat().st_size * 8  # 4-bit GGUF -> float32 on conversion
    return None


def check_disk(out: Path, needed: int | None) -> None:
    if needed is None:
        return
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    free = shutil.disk_usage(ancestor).free
    if free < needed * DISK_MARGIN:
        raise ConfigError(f"not enough disk space for the artifact at {out}: needs about "
                          f"{megabytes(needed * DISK_MARGIN)} MB, {megabytes(free)} MB free")


def source_capabilities(model: str) -> set[str]:
    """Capabilities the model source already has (an artifact's ``provides``; nothing for a plain
    model), read from its config alone, so a recipe is checked against them before loading."""
    kind, folder = model_source(model)
    if kind != "artifact":
        return set()
    from andactl.formats.artifact import artifact_meta

    return set(artifact_meta(folder).get("provides", []))


def preflight(model: str, output: str | None, overwrite: bool, data_dir, calibration: dict | None = None,
              eval_spec: dict | None = None, calibration_used: bool = True, train_seqlens: list[int] = (),
              prunes: list[dict] = ()) -> None:
    """Every check above for one run (``train_seqlens``: the recipe's recovery sequence lengths;
    ``prunes``: its resolved prune_mlp steps); raises the first failure. Touches nothing."""
    from andactl.formats.output_dir import check_output

    kind, folder = model_source(model)
    out = check_output(output, overwrite) if output is not None else None
    if calibration is not None and calibration_used:
        check_calibration(calibration, data_dir)
        if "seqlen" in calibration:
            check_seqlen(folder, int(calibration["seqlen"]), "--cal-seqlen")
    for seqlen in train_seqlens:
        check_seqlen(folder, seqlen, "recover seqlen")
    for step in prunes:
        check_prune(folder, step)
    if eval_spec is not None:
        check_eval_spec(eval_spec)
        tasks = check_tasks(eval_spec.get("tasks", "wikitext2"))
        check_task_data(tasks, data_dir)
        from andactl.evaluation.harness import PPL_TASKS

        if any(t in PPL_TASKS for t in tasks):
            check_seqlen(folder, int(eval_spec.get("seqlen", 2048)), "eval seqlen")
    if out is not None:
        check_disk(out, weights_bytes(kind, folder, model))
