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


def _piqa_dir(tmp_path, docs: list[str], labels: str):
    (tmp_path / "piqa").mkdir(parents=True)
    (tmp_path / "piqa" / "valid.jsonl").write_text("\n".join(docs) + "\n")
    (tmp_path / "piqa" / "valid-labels.lst").write_text(labels)
    return tmp_path


DOC = '{"goal": "g", "sol1": "a", "sol2": "b"}'


@pytest.mark.parametrize("docs,labels,pattern", [
    ([DOC, DOC], "0\n", "piqa: 2 documents in valid.jsonl but 1 labels in valid-labels.lst"),
    ([DOC, "{not json"], "0\n1\n", r"piqa/valid.jsonl:2: not a JSON record"),
    ([DOC], "x\n", r"piqa: the local data files do not have the expected layout \(ValueError"),
    (['{"goal": "g", "sol1": "a"}'], "0\n", r"piqa: the local data files do not have the expected layout \(KeyError: 'sol2'"),
])
def test_damaged_local_data_is_the_users_error(tmp_path, docs, labels, pattern):
    from andactl.errors import DataError
    from andactl.evaluation.local_tasks import piqa_records

    with pytest.raises(DataError, match=pattern):
        piqa_records(_piqa_dir(tmp_path, docs, labels))


def test_damaged_hellaswag_archive(tmp_path):
    from andactl.errors import DataError
    from andactl.evaluation.local_tasks import hellaswag_records

    (tmp_path / "hellaswag").mkdir()
    (tmp_path / "hellaswag" / "hellaswag_val_full.txt.bz2").write_bytes(b"BZh9 not an archive")
    with pytest.raises(DataError, match=r"hellaswag: the local data files do not have the expected layout \(OSError"):
        hellaswag_records(tmp_path)


def test_damaged_data_through_eval_is_one_line(tiny_hf_dir, tmp_path, caplog):
    # lm-eval's notes on how andactl calls it (an in-process model, local loaders) are dropped too
    from click.testing import CliRunner

    from andactl.cli.main import cli
    from andactl.evaluation.harness import LM_EVAL_CALL_NOTES

    data = _piqa_dir(tmp_path, [DOC, DOC], "0\n")
    res = CliRunner().invoke(cli, ["-q", "eval", str(tiny_hf_dir), "--tasks", "piqa", "--data-dir", str(data)])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and res.stdout == "", res.stderr
    assert lines == ["error: piqa: 2 documents in valid.jsonl but 1 labels in valid-labels.lst"], res.stderr
    lm_eval_records = [r.getMessage() for r in caplog.records if r.name.startswith("lm_eval")]
    assert not [m for m in lm_eval_records for _, fragment in LM_EVAL_CALL_NOTES if fragment in m], lm_eval_records


def test_call_notes_dropped_other_warnings_kept(caplog):
    import logging

    from andactl.evaluation.harness import LM_EVAL_CALL_NOTES, quiet_call_notes

    quiet_call_notes()
    quiet_call_notes()  # idempotent: one filter per logger
    for name, fragment in LM_EVAL_CALL_NOTES:
        logging.getLogger(name).warning(f"piqa: {fragment} and more")
        logging.getLogger(name).warning("a context was truncated")
        assert sum(type(f).__name__ == "_DropCallNotes" for f in logging.getLogger(name).filters) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["a context was truncated"] * len(LM_EVAL_CALL_NOTES)


def test_missing_zero_shot_files_fail_before_the_model_loads(tiny_hf_dir, data_dir, tmp_path):
    """Every file a zero-shot task reads is checked before any model loads, through eval and a
    recipe's eval: block (piqa without its labels file was an error only after loading, in lm-eval,
    below its INFO lines; a recipe's run wrote its artifact first)."""
    from click.testing import CliRunner

    from andactl.cli.main import cli
    from andactl.evaluation.local_tasks import TASK_FILES, check_files

    (tmp_path / "d" / "piqa").mkdir(parents=True)
    (tmp_path / "d" / "piqa" / "valid.jsonl").write_text(DOC + "\n")
    for name in ("arc", "alpaca"):
        (tmp_path / "d" / name).symlink_to(data_dir / name)
    for task in TASK_FILES:  # the shared data directory holds them all
        check_files(task, data_dir)

    for tasks, missing in (("piqa", "piqa/validation: none of piqa/valid-labels.lst"),
                           ("arc_e,hellaswag", "hellaswag/validation: none of hellaswag/hellaswag_val_full.txt.bz2")):
        res = CliRunner().invoke(cli, ["eval", str(tiny_hf_dir), "--tasks", tasks, "--data-dir", str(tmp_path / "d")])
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and missing in lines[0], res.stderr
    (tmp_path / "r.yaml").write_text("passes:\n  - pass: fuse_norms\neval: {tasks: winogrande}\n")
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--model", str(tiny_hf_dir), "-o", str(tmp_path / "o"),
                                   "--data-dir", str(tmp_path / "d")])
    assert res.exit_code == 2 and "winogrande/validation: none of winogrande/dev.jsonl" in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_zero_shot_reports_documents_scored_and_standard_error(tiny_hf_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from andactl.cli.main import cli

    data = _piqa_dir(tmp_path, [DOC] * 5, "0\n1\n0\n1\n1\n")
    args = ["-q", "eval", str(tiny_hf_dir), "--tasks", "piqa", "--limit", "3", "--data-dir", str(data)]
    res = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert res.exit_code == 0, res.stderr
    piqa = json.loads(res.stdout)["results"]["piqa"]
    assert piqa["documents"] == 3 and piqa["total_documents"] == 5
    se = (piqa["acc"] * (1 - piqa["acc"]) / 2) ** 0.5  # lm-eval's: the sample standard deviation over sqrt(n)
    assert piqa["acc_stderr"] == pytest.approx(se, abs=1e-12)
    human = CliRunner().invoke(cli, args).stdout
    assert f"{100 * piqa['acc']:.2f} ± {100 * se:.2f}" in human and "piqa: 3/5 documents" in human


def test_an_answer_longer_than_the_context_is_one_line(tiny_hf_dir, tmp_path):
    # the tiny model's context is 128 tokens of its character tokenizer: a 200-character answer cannot fit
    from click.testing import CliRunner

    from andactl.cli.main import cli

    long = '{"goal": "g", "sol1": "' + "a" * 200 + '", "sol2": "b"}'
    data = _piqa_dir(tmp_path, [DOC, long, DOC], "0\n1\n0\n")
    res = CliRunner().invoke(cli, ["-q", "eval", str(tiny_hf_dir), "--tasks", "piqa", "--data-dir", str(data)])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and res.stdout == "", res.stderr
    assert lines == ["error: zero-shot: 1 of 6 answers are longer than the model's context of 128 tokens "
                     "(the longest: 201); lm-eval cannot score them"], res.stderr


def test_quiet_eval_prints_no_bars_and_no_git_probe(tiny_hf_dir, tmp_path, monkeypatch, capfd):
    # -q: lm-eval's progress bars stay off; in any case its closing environment probe does not run
    # (`git describe` printed "fatal: not a git repository" outside one, from a subprocess: fd 2)
    from click.testing import CliRunner

    from andactl.cli.main import cli

    data = _piqa_dir(tmp_path / "data", [DOC] * 3, "0\n1\n0\n")
    work = tmp_path / "not-a-repository"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git stops here, even inside a checkout
    res = CliRunner().invoke(cli, ["-q", "eval", str(tiny_hf_dir), "--tasks", "piqa", "--data-dir", str(data)])
    assert res.exit_code == 0, res.stderr
    captured = capfd.readouterr()
    assert "it/s" not in res.stderr and "%|" not in res.stderr, res.stderr
    assert "fatal" not in captured.err and "git" not in captured.err, captured.err
