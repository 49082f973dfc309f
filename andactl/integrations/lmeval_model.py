"""The lm-eval model class of model type ``andactl`` (imported only when lm-eval builds it)."""
from __future__ import annotations

from lm_eval.models.huggingface import HFLM


class AndactlLM(HFLM):
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
