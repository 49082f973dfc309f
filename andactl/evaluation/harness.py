"""Task names, and zero-shot evaluation through lm-eval-harness on an in-process model."""
from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from andactl.errors import ConfigError

log = logging.getLogger("andactl")

TASK_ALIASES = {"arc_e": "arc_easy", "arc_c": "arc_challenge", "wikitext": "wikitext2"}
PPL_TASKS = {"wikitext2": ("wikitext2", "test"), "ptb": ("ptb", "test"), "c4": ("c4", "validation")}
ZERO_SHOT_TASKS = ("piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande")
# lm-eval's warnings about the way andactl calls it (an in-process model, local dataset loaders):
# true of every andactl run and nothing a user can act on; (logger, fragment of the message)
LM_EVAL_CALL_NOTES = (
    ("lm_eval.models.huggingface", "`pretrained` model kwarg is not of type `str`"),
    ("lm_eval.models.huggingface", "Passed an already-initialized model through `pretrained`"),
    ("lm_eval.api.task", "Custom kwargs can be passed to `--metadata`"),
)


def parse_tasks(spec: str) -> list[str]:
    """Comma-separated task names -> canonical names (aliases resolved, order kept, deduplicated)."""
    names: list[str] = []
    for raw in (t.strip() for t in spec.split(",")):
        if not raw:
            continue
        name = TASK_ALIASES.get(raw, raw)
        if name not in PPL_TASKS and name not in ZERO_SHOT_TASKS:
            known = sorted(set(PPL_TASKS) | set(ZERO_SHOT_TASKS) | set(TASK_ALIASES))
            raise ConfigError(f"unknown task '{raw}'; known tasks: {', '.join(known)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError("no task given (--tasks)")
    return names


def write_local_tasks(dest: Path, data_dir: Path, tasks: list[str]) -> None:
    """Writes the task YAMLs for ``tasks`` plus their bridge module into ``dest``, each YAML
    pointing at ``data_dir`` (absolute) through ``dataset_kwargs``."""
    src = resources.files("andactl.evaluation") / "tasks"
    shutil.copyfile(str(src / "andactl_local.py"), dest / "andactl_local.py")
    for task in tasks:
        text = (src / f"{task}.yaml").read_text()
        (dest / f"{task}.yaml").write_text(text + f"dataset_kwargs:\n  data_dir: {str(data_dir)!r}\n")


def task_manager(data_dir: Path | None, tasks: list[str], workdir: Path):
    """An lm-eval TaskManager over local task YAMLs (data_dir set) or lm-eval's own tasks."""
    from lm_eval.tasks import TaskManager

    if data_dir is None:
        return TaskManager()
    write_local_tasks(workdir, data_dir, tasks)
    return TaskManager(include_path=str(workdir), include_defaults=False)


def metrics_of(task_result: dict) -> dict:
    """lm-eval's {"acc,none": x, "acc_stderr,none": s, ...} -> {"acc": x, "acc_stderr": s, ...}."""
    out = {}
    for key, value in task_result.items():
        name, _, _filter = key.partition(",")
        if name != "alias" and isinstance(value, (int, float)):
            out[name] = float(value)
    return out


class _DropCallNotes(logging.Filter):
    """Drops the records of one lm-eval logger that carry one of ``fragments``; keeps all others."""

    def __init__(self, fragments: tuple[str, ...]):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)


def quiet_call_notes() -> None:
    """Installs (once per logger) the filters that drop LM_EVAL_CALL_NOTES; idempotent."""
    by_logger: dict[str, tuple[str, ...]] = {}
    for name, fragment in LM_EVAL_CALL_NOTES:
        by_logger[name] = by_logger.get(name, ()) + (fragment,)
    for name, fragments in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropCallNotes) for f in logger.filters):
            logger.addFilter(_DropCallNotes(fragments))


@contextlib.contextmanager
def no_progress_bars():
    """Inside, every tqdm bar is disabled (lm-eval draws several on stderr and takes no switch for
    all of them; tqdm reads TQDM_DISABLE only when it is imported). The class is restored after."""
    from tqdm import std

    original = std.tqdm.__dict__["__init__"]

    def init(self, *args, **kwargs):
        kwargs["disable"] = True
        original.__get__(self, type(self))(*args, **kwargs)

    std.tqdm.__init__ = init
    try:
        yield
    finally:
        std.tqdm.__init__ = original


@contextlib.contextmanager
def without_environment_probe():
    """Inside, lm-eval's simple_evaluate skips describing the environment at its end: ``git describe``
    in the current directory (whose "fatal: not a git repository" reaches stderr outside one) and
    torch's collect_env (about 1.6 s of subprocesses per call). andactl keeps only the metrics and
    document counts of its results. Restored after."""
    from lm_eval import evaluator

    saved = evaluator.get_git_commit_hash, evaluator.add_env_info
    evaluator.get_git_commit_hash, evaluator.add_env_info = (lambda: None), (lambda storage: None)
    try:
        yield
    finally:
        evaluator.get_git_commit_hash, evaluator.add_env_info = saved


def zero_shot(model, tokenizer, tasks: list[str], data_dir: Path | None, limit: int | None = None,
              batch_size: int = 8, device: str = "cpu", seed: int = 1234, progress: bool = True) -> dict[str, dict]:
    """Runs ``tasks`` with lm_eval.simple_evaluate on an in-process HFLM (``ContextCheckedLM``); returns
    metrics per task, with the documents scored and the documents in the set (``documents`` <
    ``total_documents`` under ``limit``)."""
    from lm_eval import simple_evaluate

    from andactl.integrations.lmeval_model import ContextCheckedLM

    quiet_call_notes()
    lm = ContextCheckedLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    with (tempfile.TemporaryDirectory(prefix="andactl-tasks-") as tmp, without_environment_probe(),
          contextlib.nullcontext() if progress else no_progress_bars()):
        tm = task_manager(data_dir, tasks, Path(tmp))
        res = simple_evaluate(
            model=lm, tasks=tasks, limit=limit, task_manager=tm, log_samples=False,
            bootstrap_iters=1000, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    counts = res.get("n-samples", {})  # {"original": documents in the set, "effective": documents scored}
    return {task: {**metrics_of(res["results"][task]),
                   **({"documents": int(counts[task]["effective"]), "total_documents": int(counts[task]["original"])}
                      if task in counts else {})} for task in tasks}
