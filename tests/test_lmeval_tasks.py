"""Local task YAMLs render the same documents as lm-eval's official task definitions."""
from __future__ import annotations

import ast
from pathlib import Path

import lm_eval
import pytest
import yaml
from lm_eval.utils import apply_template

from andactl.errors import ConfigError
from andactl.evaluation.harness import parse_tasks, task_manager

OFFICIAL = Path(lm_eval.__file__).parent / "tasks"


def _official(rel: str) -> dict:
    text = (OFFICIAL / rel).read_text()
    return yaml.load(text, Loader=yaml.BaseLoader)  # templates are plain strings


def _local_tasks(data_dir, tmp_path, names):
    from lm_eval.tasks import get_task_dict

    tm = task_manager(data_dir, names, tmp_path)
    return get_task_dict(names, tm)


def _render(cfg: dict, doc: dict):
    text = apply_template(cfg["doc_to_text"], doc)
    choices = apply_template(cfg["doc_to_choice"], doc)
    target = cfg["doc_to_target"]
    target = doc[target] if target in doc else apply_template(target, doc)
    return text, choices, int(target)


def test_piqa_first_documents(data_dir, tmp_path):
    task = _local_tasks(data_dir, tmp_path, ["piqa"])["piqa"]
    docs = list(task.validation_docs())
    assert len(docs) == 1838
    official = _official("piqa/piqa.yaml")
    for doc in docs[:5]:
        text, choices, target = _render(official, doc)
        assert task.doc_to_text(doc) == text
        assert task.doc_to_choice(doc) == ast.literal_eval(choices) == [doc["sol1"], doc["sol2"]]
        assert task.doc_to_target(doc) == target
    first = docs[0]
    assert task.doc_to_text(first) == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"
    assert task.doc_to_target(first) == 0
    assert task.doc_to_choice(first)[1].endswith("made of ripped jeans material, you will also need to supply it with a water bottle and a food dish.")


def test_arc_easy_first_documents(data_dir, tmp_path):
    task = _local_tasks(data_dir, tmp_path, ["arc_easy"])["arc_easy"]
    docs = list(task.test_docs())
    assert len(docs) == 2376
    official = _official("arc/arc_easy.yaml")
    assert task.config.test_split == official["test_split"] == "test"
    for doc in docs[:5]:
        text, choices, target = _render(official, doc)
        assert task.doc_to_text(doc) == text
        assert str(task.doc_to_choice(doc)) == str(choices)
        assert task.doc_to_target(doc) == target
    first = docs[0]
    assert task.doc_to_text(first) == "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:"
    assert task.doc_to_choice(first)[0] == "Sunlight is the source of energy for nearly all ecosystems."
    assert task.doc_to_target(first) == 0


def test_metrics_are_lm_evals(data_dir, tmp_path):
    tasks = _local_tasks(data_dir, tmp_path, ["piqa", "arc_challenge", "hellaswag", "winogrande"])
    assert [m["metric"] for m in tasks["piqa"].config.metric_list] == ["acc", "acc_norm"]
    assert len(list(tasks["hellaswag"].validation_docs())) == 10042
    wino = tasks["winogrande"]
    doc = next(iter(wino.validation_docs()))
    assert wino.doc_to_choice(doc) == ["Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"]
    assert len(list(tasks["arc_challenge"].test_docs())) == 1172


def test_parse_tasks_aliases_and_errors():
    assert parse_tasks("piqa,arc_e,wikitext2,arc_c,arc_easy") == ["piqa", "arc_easy", "wikitext2", "arc_challenge"]
    with pytest.raises(ConfigError, match="unknown task 'mmlu'"):
        parse_tasks("piqa,mmlu")
    with pytest.raises(ConfigError, match="no task given"):
        parse_tasks(" , ")
