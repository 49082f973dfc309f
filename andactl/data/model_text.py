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
SAMPLE_BATCH = 16  # sequences sampled side by side when the caller does not say
# recover's self text: sequences sampled side by side, as many as a KV cache of this size holds (at
# least SAMPLE_BATCH, at most SAMPLE_MAX_ROWS): on SmolLM2-135M at 256 tokens in float32, 64 rows
# (750 MB) sample 388 tokens/s against 16 rows' 200 on the 2-core Xeon (benchmarks/bench_sampling.py)
SAMPLE_CACHE_BYTES = 1 << 30
SAMPLE_MAX_ROWS = 64


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


def kv_width(config) -> int:
    """Width of one layer's cached keys (= values): KV heads x head dim, from an HF config."""
    heads = int(getattr(config, "num_attention_heads", 1))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return int(getattr(config, "num_key_value_heads", None) or heads) * int(head_dim)


def sampling_rows(layers: int, width: int, element_size: int, seqlen: int, count: int) -> int:
    """Sequences to sample side by side: as many as SAMPLE_CACHE_BYTES of KV cache hold at ``seqlen``
    tokens (``layers`` x keys and values of ``width`` elements of ``element_size`` bytes per token),
    clamped to [SAMPLE_BATCH, SAMPLE_MAX_ROWS], and never more than ``count``."""
    per_row = max(1, 2 * layers * width * element_size * seqlen)
    return max(1, min(count, max(SAMPLE_BATCH, min(SAMPLE_MAX_ROWS, SAMPLE_CACHE_BYTES // per_row))))


def model_sampling_rows(model, seqlen: int, count: int) -> int:
    """``sampling_rows`` for ``model`` as loaded (its config and parameter dtype)."""
    cfg = model.config
    size = next(model.parameters()).element_size()
    return sampling_rows(int(cfg.num_hidden_layers), kv_width(cfg), size, seqlen, count)


def draw_tokens(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row of ``probs`` [n, V] (non-negative, rows with a positive sum), drawn with
    probability proportional to its entry by inverting the row's float64 cumulative sum at one
    uniform draw per row: an index whose entry is 0 is never drawn, and the same generator state
    gives the same indices. 0.7 / 2.8 ms against ``torch.multinomial``'s 15 / 61 ms on 16 / 64 rows
    of 49152 (benchmarks/bench_sampling.py), and not the same draws. Returns [n, 1] int64; a row
    whose sum is not a positive finite number (NaN or infinite logits) raises NumericsError."""
    from andactl.errors import NumericsError

    cdf = probs.cumsum(-1, dtype=torch.float64)
    total = cdf[:, -1:]
    if not bool(((total > 0) & torch.isfinite(total)).all()):
        raise NumericsError("sampling text: the model's next-token probabilities are not finite and positive")
    u = torch.rand(total.shape, generator=generator, dtype=torch.float64) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))  # u < total: a positive entry ends the search
    return torch.searchsorted(cdf, u, right=True)  # the first index whose cumulative sum exceeds u


@torch.no_grad()
def sample_from_model(model, vocab_size: int, count: int, seqlen: int, seed: int, batch_size: int = SAMPLE_BATCH,
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
                    ids[:, pos:pos + 1] = draw_tokens(probs.cpu(), gen)
                out.append(ids)
    finally:
        model.train(was_training)
    return torch.cat(out)
