"""The lm-eval model classes andactl uses (imported only when lm-eval builds one): ``ContextCheckedLM``
(andactl eval's in-process model) and model type ``andactl``."""
from __future__ import annotations

from lm_eval.models.huggingface import HFLM

from andactl.errors import ModelError


class ContextCheckedLM(HFLM):
    """lm-eval's HF causal-LM wrapper, refusing in one line (ModelError) an answer longer than the
    model's context, which lm-eval scores only after an ``assert`` (an internal failure without a
    message) once the model has run on earlier batches."""

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        longest = max((len(continuation) for _, _, continuation in requests), default=0)
        if longest > self.max_length:
            n = sum(len(continuation) > self.max_length for _, _, continuation in requests)
            raise ModelError(f"zero-shot: {n} of {len(requests)} answers are longer than the model's context of "
                             f"{self.max_length} tokens (the longest: {longest}); lm-eval cannot score them")
        return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)


class AndactlLM(ContextCheckedLM):
    """lm-eval's HF causal-LM wrapper around ``andactl.load(pretrained)``; ``dtype`` (e.g.
    ``float32``/``bfloat16``) casts the float tensors, ``device`` as in lm-eval (default cpu),
    ``backend`` the packed linears' kernel (default auto, as ``andactl.load``)."""

    def __init__(self, pretrained: str, device: str = "cpu", dtype: str | None = None, backend: str = "auto",
                 **kwargs):
        import andactl

        model, tokenizer = andactl.load(pretrained, device=device, dtype=None if dtype in (None, "auto") else dtype,
                                        backend=backend)
        kwargs.pop("tokenizer", None)
        super().__init__(pretrained=model, tokenizer=tokenizer, device=device, **kwargs)
