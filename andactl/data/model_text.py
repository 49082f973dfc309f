"""Text sampled from a causal LM itself (LLM-QAT's data-free recipe): each sequence starts from
one uniformly drawn token and continues by sampling the model's next-token distribution.

Used as recovery training text (``recover --train-data self``) and as calibration text
(``--cal-data self``, or half of it with ``--cal-data mix``). Invariants: the same (model, sizes,
seed) gives the same ids; the global RNG is untouched; every id is below ``vocab_size``.
"""
from __future__ import annotations

import torch

SELF = "self"  # the dataset name that means "sampled from the model"
MIX = "mix"  # calibration: half alpaca (the configured split), half sampled from the model
MIX_DATASET = "alpaca"  # the dataset of MIX's first half


def model_samples(dataset: str, samples: int) -> int:
    """How many of ``samples`` calibration sequences on ``dataset`` are sampled from the model
    (``self``: all; ``mix``: all but the first ``samples // 2``, which are alpaca's; else none)."""
    return samples if dataset == SELF else samples - samples // 2 if dataset == MIX else 0


def samples_model(dataset: str) -> bool:
    """Whether calibration on ``dataset`` samples text from the model (needs the whole model)."""
    return model_samples(dataset, 1) > 0


def model_vocab(model, tokenizer) -> int:
    """The ids both the tokenizer and the model's output layer know (a padded head has extra rows;
    a quantized head table has ``out_features`` but may have no float ``weight``)."""
    head = model.get_output_embeddings()
    rows = getattr(head, "out_features", None) or head.weight.shape[0]
    return min(len(tokenizer), int(rows))


@torch.no_grad()
def sample_from_model(model, vocab_size: int, count: int, seqlen: int, seed: int, batch_size: int = 16,
                      temperature: float = 1.0, device: str | torch.device = "cpu") -> torch.Tensor:
    """``count`` sequences of ``seqlen`` token ids sampled from ``model`` at ``temperature``
    (KV cache, own seeded generator; decode steps through andactl's attention kernel where it
    applies); the model's train/eval mode and attention implementation are restored afterwards."""
    from andactl.models import decode_step  # model code: imported when sampling, not for SELF
    from andactl.models.kv_cache import cache_kwargs, reserved_cache_arg

    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    out = []
    key, extra = cache_kwargs(model)
    try:
        with decode_step.enabled(model):
            for start in range(0, count, batch_size):
                n = min(batch_size, count - start)
                ids = torch.empty(n, seqlen, dtype=torch.long)  # filled column by column, on the CPU
                ids[:, :1] = torch.randint(0, vocab_size, (n, 1), generator=gen)
                past = reserved_cache_arg(model)  # {}: the model makes its own
                for pos in range(1, seqlen):
                    res = model(input_ids=ids[:, pos - 1:pos].to(device), use_cache=True, **past, **extra)
                    past = {key: res[key]}
                    probs = torch.softmax(res.logits[:, -1, :vocab_size].float() / temperature, dim=-1)
                    ids[:, pos:pos + 1] = torch.multinomial(probs.cpu(), 1, generator=gen)
                out.append(ids)
    finally:
        model.train(was_training)
    return torch.cat(out)
