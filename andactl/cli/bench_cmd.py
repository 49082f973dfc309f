"""``andactl bench``: prefill / decode tokens/s, TTFT and peak RSS of several models side by side."""
from __future__ import annotations

import click

from andactl.cli.common import attention_option, device_option, emit, format_option, run_dtype_option


def parse_batches(text: str) -> list[int]:
    """``"1,8"`` -> [1, 8]; click.BadParameter (one line) unless every item is a positive integer."""
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise click.BadParameter(f"must be comma-separated positive integers, got {text!r}", param_hint="--batch")
    return out


def _check_contexts(models: tuple[str, ...], prompt_tokens: int, gen_tokens: int) -> list[str]:
    """Each MODEL's source kind (``model_source``); fails before any model loads when a MODEL is no
    model andactl reads (every MODEL is checked for that first) or its context cannot hold the
    prompt plus the generated tokens, or SliceGPT's 128-token sequences."""
    from andactl.errors import ConfigError
    from andactl.evaluation.throughput import SLICEGPT_SEQLEN
    from andactl.preflight import max_positions, model_source

    sources = [model_source(source) for source in models]
    for source, (_, folder) in zip(models, sources):
        limit = max_positions(folder)
        if limit is not None and max(prompt_tokens + gen_tokens, SLICEGPT_SEQLEN) > limit:
            raise ConfigError(f"{source}: --prompt-tokens {prompt_tokens} + --gen-tokens {gen_tokens} (and SliceGPT's "
                              f"{SLICEGPT_SEQLEN}-token sequences) must fit the model's context of {limit} tokens")
    return [kind for kind, _ in sources]


def _check_memory(models: tuple[str, ...], kinds: list[str], batch: int, prompt_tokens: int, gen_tokens: int,
                  dtype: str) -> None:
    """Fail before any model loads when a MODEL's largest measurement cannot fit in the RAM
    available now even by the lower bound of throughput.least_bytes (a batch of 100,000 was killed
    by the kernel after minutes); ``kinds``: each MODEL's source kind. A hub id's shape is not
    fetched for this: it is not checked."""
    from andactl.dry_run.memory import available_bytes, loaded_model
    from andactl.errors import ConfigError
    from andactl.evaluation.throughput import least_bytes

    available = available_bytes()
    for source, kind in zip(models, kinds):
        loaded = loaded_model(source, kind, dtype)
        if loaded is None:
            continue
        shape, element, model_bytes = loaded
        parts = least_bytes(shape, batch, prompt_tokens, gen_tokens, element, model_bytes)
        if sum(parts.values()) > available:
            raise ConfigError(f"{source}: --batch {batch} x ({prompt_tokens} + {gen_tokens}) tokens needs at least "
                              f"{sum(parts.values()) / 1e9:.1f} GB (KV cache {parts['kv_cache'] / 1e9:.1f}, logits {parts['logits'] / 1e9:.1f}, "
                              f"activations {parts['activations'] / 1e9:.1f}, model {model_bytes / 1e9:.2f}), more than the "
                              f"{available / 1e9:.1f} GB available: use a smaller --batch, --prompt-tokens or --gen-tokens")


def _human(data: dict) -> None:
    """A markdown table (pastes into docs as is), one row per model and batch size."""
    info = data["info"]
    out = [f"# CPU {info.get('cpu')}, {info.get('cpu_capability')} ({info.get('anda_isa')}), {info['threads']} threads, "
           f"torch {info['torch']}, load average {info.get('loadavg')}; prompt {data['prompt_tokens']} tokens, "
           f"{data['gen_tokens']} generated",
           "| model | dtype | backend | attention | batch | prefill tok/s | decode tok/s | TTFT ms | ms/token | SliceGPT tok/s "
           "| peak RSS MB | x prefill | x decode | x SliceGPT |", "|" + "---|" * 14]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in data["results"]:
        attn = r["attention"] + (" + lean step" if r["decode_step"] == "lean" else "")
        out.append(f"| {r['model']} | {r['dtype']} | {r['backend']} | {attn} | {r['batch']} | {r['prefill_tok_s']:.1f} "
                   f"| {r['decode_tok_s']:.1f} | {r['ttft_ms']:.1f} | {r['decode_ms_per_token']:.1f} "
                   f"| {r['slicegpt_tok_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                   + " | ".join(fmt(r["vs_first"][k]) for k in ("prefill", "decode", "slicegpt")) + " |")
    out.append("x = ratio to the first model at the same batch (SliceGPT reports 1.55x at 25% slicing)")
    click.echo("\n".join(out))


@click.command("bench")
@click.argument("models", nargs=-1, required=True)
@click.option("--prompt-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--gen-tokens", type=click.IntRange(min=0), default=128, show_default=True)
@click.option("--batch", "batches", default="1,8", show_default=True, help="Comma-separated batch sizes.")
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True, help="Timed runs per figure (median).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads (default: torch's).")
@click.option("--backend", type=click.Choice(["auto", "cuda", "cpp", "reference"]), default="auto", show_default=True,
              help="Kernel backend for Anda-packed modules.")
@attention_option
@run_dtype_option
@device_option
@format_option
def bench(models, prompt_tokens, gen_tokens, batches, repeat, threads, backend, attention, dtype, device, fmt):
    """Benchmark MODELS (dense, sliced, packed ...) side by side in one process: prefill and decode
    tokens/s with a KV cache, time to first token, peak RSS, and SliceGPT's batch x 128 throughput."""
    import gc

    import torch

    from andactl.kernels.backend import set_model_backend
    from andactl.evaluation import throughput
    from andactl.models import decode_attention, decode_step
    from andactl.models.loading import load_model, parse_device, resolve_dtype_name
    from andactl.models.stats import count_parameters

    batch_list = parse_batches(batches)
    on_cpu = parse_device(device).type == "cpu"
    kinds = _check_contexts(models, prompt_tokens, gen_tokens)
    dtype = resolve_dtype_name(dtype, device)
    if on_cpu:
        _check_memory(models, kinds, max(batch_list), prompt_tokens, gen_tokens, dtype)
    if threads is not None:
        torch.set_num_threads(threads)
    results, first = [], {}
    for source in models:
        gc.collect()
        throughput.reset_peak_rss()
        loaded = load_model(source, dtype, device)
        used = set_model_backend(loaded.model, backend, device)
        switched, lean = decode_step.switch_on(loaded.model) if attention == "auto" else (False, False)
        attn, step = (decode_attention.NAME if switched else "sdpa"), ("lean" if lean else "transformers")
        params = count_parameters(loaded.model)  # logical weights: packed linears and quantized tables included
        for b in batch_list:
            r = throughput.measure(loaded.model, b, prompt_tokens, gen_tokens, repeat, device=device,
                                   reserved=attention == "auto").to_dict()
            base = first.setdefault(b, r)
            r["vs_first"] = {k: r[f"{k}_tok_s"] / base[f"{k}_tok_s"] if base[f"{k}_tok_s"] else None
                             for k in ("prefill", "decode", "slicegpt")}
            results.append({"model": source, "kind": loaded.kind, "dtype": dtype, "backend": used,
                            "attention": attn, "decode_step": step, "parameters": params, **r})
        del loaded
    data = {"info": throughput.machine_info(), "prompt_tokens": prompt_tokens, "gen_tokens": gen_tokens,
            "batches": batch_list, "results": results}
    emit(data, fmt, _human)


COMMANDS = [bench]
