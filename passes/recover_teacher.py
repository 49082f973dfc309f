"""The teacher of distillation: which model it is by default and whether it may teach a student.

Invariants: the default teacher is the dense model the student was made from (the first source
in the artifact's provenance, else the model this run loaded); a teacher is accepted only if its
tokenizer maps exactly the same strings to the same ids as the student's. Checking needs the
tokenizers only, never the model weights.
"""
from __future__ import annotations

from pathlib import Path

from andactl.errors import ConfigError, ModelError


def dense_source(provenance: dict, loaded_source: str | None) -> str | None:
    """The original dense model named by ``provenance`` (an artifact's), else ``loaded_source``."""
    steps = provenance.get("steps") or []
    if steps and steps[0].get("source"):
        return str(steps[0]["source"])
    return loaded_source


def source_tokenizer(source: str):
    """The tokenizer of a model source (alias, .gguf, model/artifact folder, hub id), without
    loading its weights; ModelError if there is none."""
    from transformers import AutoTokenizer

    from andactl.models.loading import ALIASES, alias_file, gguf_as_hf_dir, hub_id, unknown_model

    path = Path(source).expanduser()
    if source in ALIASES:
        path = gguf_as_hf_dir(alias_file(source))
    elif path.is_file() and path.suffix == ".gguf":
        path = gguf_as_hf_dir(path.resolve())
    elif not path.exists() and not hub_id(source):
        raise unknown_model(source, "teacher model")
    if path.exists():
        where, kwargs = str(path), {"local_files_only": True}
    else:
        from andactl.models.hub import hub_model_kwargs

        where, kwargs = source, hub_model_kwargs(source, "teacher model")
    try:
        return AutoTokenizer.from_pretrained(where, **kwargs)
    except Exception as err:
        raise ModelError(f"teacher '{source}': no readable tokenizer ({type(err).__name__})") from err


def check_same_vocab(student_tok, teacher_tok, teacher: str) -> None:
    """ConfigError unless both tokenizers have the same vocabulary (token -> id) and size."""
    if len(student_tok) != len(teacher_tok) or student_tok.get_vocab() != teacher_tok.get_vocab():
        raise ConfigError(f"teacher '{teacher}' has a different vocabulary/tokenizer than the student "
                          f"({len(teacher_tok)} vs {len(student_tok)} tokens); distillation needs the same tokenizer")


def check_teacher(student_source: str, teacher: str, ce_weight: float = 0.0) -> None:
    """ConfigError when ``teacher`` is ``student_source`` itself and the loss is distillation alone
    (a model distilled from itself starts at zero loss and never moves), else compares the two
    tokenizers (both model sources)."""
    path = Path(teacher).expanduser()
    same = teacher == student_source or (path.exists() and path.resolve() == Path(student_source).expanduser().resolve())
    if same and ce_weight == 0:
        raise ConfigError(f"--teacher {teacher} is the model being recovered: distilling a model from itself changes "
                          "nothing; leave --teacher out to distil from the dense model it came from, or name another")
    check_same_vocab(source_tokenizer(student_source), source_tokenizer(teacher), teacher)


def load_teacher(source: str, dtype, device, student_tokenizer):
    """The teacher model from ``source``, frozen, as a recover_train.Student (``.model`` set);
    ConfigError unless its vocabulary is the student's."""
    from andactl.models.loading import load_model
    from andactl.passes.recover_train import Student

    loaded = load_model(source, dtype, str(device))
    check_same_vocab(student_tokenizer, loaded.tokenizer, source)
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    teacher = Student(loaded.model, loaded.adapter)
    teacher.model = loaded.model
    return teacher
