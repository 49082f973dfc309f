"""Inference speed of a loaded model, in the spirit of llama.cpp's ``llama-bench``.

- prefill: one forward of ``batch`` x ``prompt_tokens`` random token ids with a KV cache; its
  wall time is the time to first token (TTFT, the greedy next token included) and gives prefill
  tokens/s = batch * prompt_tokens / TTFT;
- decode: ``gen_tokens`` greedy steps of one token per sequence on that KV cache (by default one
  that grows in place, kv_cache.reserved_cache; the next token is the argmax of float32 logits, as
  transformers' generate takes it); decode tokens/s = batch * gen_tokens / their wall time;
- SliceGPT's throughput measure: forward passes (no cache) of ``batch`` x 128-token sequences,
  tokens/s = batch * 128 / median time (the paper's 1.55x at 25% slicing is a ratio of these);
- peak RSS of the process while the model ran (Linux: the high-water mark is reset before the
  model is measured, so models benchmarked side by side in one process do not inherit each
  other's peak; elsewhere the process-lifetime peak).

Token ids are drawn from a seeded generator (the content does not change the arithmetic cost).
Every figure is a median over ``repeat`` runs after one warm-up; nothing here trains or reads
an eval split.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from andactl.models.kv_cache import cache_kwargs, reserved_cache_arg

SLICEGPT_SEQLEN = 128


@dataclass(frozen=True)
class Throughput:
    """One model at one batch size (all rates in tokens/s, times in ms, memory in MB)."""

    batch: int
    prompt_tokens: int
    gen_tokens: int
    prefill_tok_s: float
    decode_tok_s: float
    ttft_ms: float
    decode_ms_per_token: float
    slicegpt_tok_s: float
    peak_rss_mb: float

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux clear_refs "5"); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size in MB (10**6 bytes): VmHWM on Linux (resettable), else ru_maxrss (both in KiB)."""
    from andactl.instruments import MB

    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def _vocab_size(model) -> int:
    emb = model.get_input_embeddings()
    return int(emb.num_embeddings if hasattr(emb, "num_embeddings") else emb.weight.shape[0])


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _prefill_decode(model, ids: torch.Tensor, gen_tokens: int, reserved: bool) -> tuple[float, float]:
    """(seconds to first token, seconds for gen_tokens greedy KV-cache steps); ``reserved``: the cache
    that grows in place, else transformers' own."""
    key, extra = cache_kwargs(model)

    def first():
        out = model(input_ids=ids, use_cache=True, **(reserved_cache_arg(model) if reserved else {}), **extra)
        return out[key], out.logits[:, -1].float().argmax(-1, keepdim=True)

    (cache, nxt), ttft = _timed(first)
    t0 = time.perf_counter()
    for _ in range(gen_tokens):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra)
        cache, nxt = out[key], out.logits[:, -1].float().argmax(-1, keepdim=True)
    return ttft, time.perf_counter() - t0


def least_bytes(shape, batch: int, prompt_tokens: int, gen_tokens: int, element_size: int, model_bytes: int) -> dict:
    """A lower bound, by part, on the bytes one measurement holds at once: the model, the KV cache
    of every sequence at its full length (keys and values of every layer), the prefill's MLP
    activation, and the next token's logits of every sequence with their float32 copy for the
    argmax (``shape``: dry_run.shape.ModelShape). A run also holds attention, the other positions'
    logits and the allocator's slack, so a measurement this bound does not fit in could never run."""
    return {"model": model_bytes,
            "kv_cache": 2 * shape.layers * batch * (prompt_tokens + gen_tokens) * shape.kv_width * element_size,
            "activations": batch * prompt_tokens * shape.widest * element_size,
            "logits": batch * shape.vocab * (element_size + 4)}


def measure(model, batch: int, prompt_tokens: int = 512, gen_tokens: int = 128, repeat: int = 1,
            seed: int = 0, device: str | torch.device = "cpu", reserved: bool = True) -> Throughput:
    """Prefill / decode / TTFT / SliceGPT throughput of ``model`` at one batch size (medians over
    ``repeat`` runs after a warm-up); ``reserved=False`` decodes on transformers' own DynamicCache.
    The caller resets the peak RSS before loading the model."""
    gen = torch.Generator().manual_seed(seed)
    vocab = _vocab_size(model)
    ids = torch.randint(0, vocab, (batch, prompt_tokens), generator=gen).to(device)
    sg_ids = torch.randint(0, vocab, (batch, SLICEGPT_SEQLEN), generator=gen).to(device)
    model.eval()
    with torch.inference_mode():
        _prefill_decode(model, ids[:, : min(prompt_tokens, 16)], min(gen_tokens, 2), reserved)  # warm-up
        runs = [_prefill_decode(model, ids, gen_tokens, reserved) for _ in range(repeat)]
        model(input_ids=sg_ids, use_cache=False)  # warm-up
        sg = [_timed(lambda: model(input_ids=sg_ids, use_cache=False))[1] for _ in range(repeat)]
    ttft = statistics.median(r[0] for r in runs)
    dec = statistics.median(r[1] for r in runs)
    return Throughput(
        batch=batch, prompt_tokens=prompt_tokens, gen_tokens=gen_tokens,
        prefill_tok_s=batch * prompt_tokens / ttft,
        decode_tok_s=batch * gen_tokens / dec if gen_tokens else 0.0,
        ttft_ms=1e3 * ttft, decode_ms_per_token=1e3 * dec / gen_tokens if gen_tokens else 0.0,
        slicegpt_tok_s=batch * SLICEGPT_SEQLEN / statistics.median(sg), peak_rss_mb=peak_rss_mb())


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor(), else "unknown"."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """CPU and runtime facts printed beside the numbers (CPU, ISA, threads, load average)."""
    info = {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    try:
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        from andactl.kernels import build

        info["anda_isa"] = build.cpu_isa_info() or None
    except ImportError:
        info["anda_isa"] = None
    return info


__all__ = ["SLICEGPT_SEQLEN", "Throughput", "cpu_name", "measure", "machine_info", "peak_rss_mb", "reset_peak_rss"]
