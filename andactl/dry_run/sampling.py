"""Time and memory of sampling text from a model (``--cal-data self|mix``, recover's
``--train-data self|mix``): decode steps with a KV cache (andactl/data/model_text.py)."""
from __future__ import annotations

import math

from andactl.data.model_text import model_samples
from andactl.dry_run.costs import MEMORY_BYTES_PER_SECOND
from andactl.dry_run.shape import ModelShape

# Sampling text from the model (--cal-data self|mix, recover --train-data self), one decode step of B_s
# sequences: Python and dispatch per layer + the weights and the KV cache read from memory + (2*P*B_s +
# attention over S/2 keys on average) at SAMPLE_RATE_FACTOR x the run FLOP rate (a decode step's
# GEMMs of 8-64 rows run at about the bare probe's rate, where whole forwards run at CPU_EFFICIENCY of
# it). Fitted on SmolLM2-135M in float32 on the 2-core Xeon with AMX, stop 53's draw_tokens sampler
# (docs/local-2026-12-07a/sample_fit.py): 86.5 / 101.4 / 125.6 / 178.0 ms per step at 8 / 16 / 32 / 64
# rows of 256 tokens and 97.0 at 8 of 1024, predicted 87.8 / 100.7 / 126.4 / 177.8 and 95.9.
# On the 2-core AMD EPYC Zen 4 (stop 58, docs/local-2026-12-07f/sample_check.log) it reads 0.95-1.14x.
SAMPLE_STEP_SECONDS_PER_LAYER = 1.6e-3
SAMPLE_RATE_FACTOR = 2.3


def calibration_sampling(shape: ModelShape, cal, b: int, flops: float) -> tuple[float, int]:
    """Time and working memory of sampling ``cal``'s model-generated sequences (none: (0, 0)):
    every rank samples all of them (then keeps its share), ``cal.batch_size`` at a time."""
    own = model_samples(cal.dataset, cal.samples)
    return sampling_seconds_and_bytes(shape, own, min(cal.batch_size, own), cal.seqlen, b, flops) if own else (0.0, 0)


def sampling_seconds_and_bytes(shape: ModelShape, own: int, batch: int, seqlen: int, b: int,
                               flops: float) -> tuple[float, int]:
    """Time and working memory of sampling ``own`` sequences of ``seqlen`` tokens from a model of
    ``shape`` held in ``b`` bytes per element, ``batch`` at a time (andactl.data.model_text), on a
    device whose whole forwards run at ``flops``."""
    B, S, L, D = batch, seqlen, shape.layers, shape.hidden
    cache = B * S * L * 2 * shape.kv_width * b  # full, at the last step
    step_flops = 2.0 * shape.parameters * B + 2.0 * B * S * D * L  # weights; attention over S/2 keys on average
    step = (SAMPLE_STEP_SECONDS_PER_LAYER * L + (shape.parameters * b + cache / 2) / MEMORY_BYTES_PER_SECOND
            + step_flops / (SAMPLE_RATE_FACTOR * flops))
    return math.ceil(own / B) * (S - 1) * step, cache + 2 * B * shape.vocab * 4
