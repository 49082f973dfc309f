"""How to pass a KV cache to a Hugging Face causal LM across transformers versions.

Invariant: the returned argument name is one the model's ``forward`` accepts, so no deprecated
alias (and no FutureWarning) is used.
"""
from __future__ import annotations

import inspect


def cache_kwargs(model) -> tuple[str, dict]:
    """(name of the KV-cache argument/output, extra kwargs): ``cache`` in newer transformers,
    ``past_key_values`` before; ``logits_to_keep=1`` where supported (only the next token's logits
    are computed, as a real generate loop does)."""
    params = inspect.signature(model.forward).parameters
    extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    return ("cache" if "cache" in params else "past_key_values"), extra
