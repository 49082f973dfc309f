"""Bridge imported by the generated task YAMLs (lm-eval resolves ``!function`` next to the YAML)."""
from andactl.evaluation.local_tasks import arc_challenge, arc_easy, hellaswag, piqa, winogrande  # noqa: F401
from lm_eval.tasks.winogrande.preprocess_winogrande import doc_to_choice, doc_to_target, doc_to_text  # noqa: F401
