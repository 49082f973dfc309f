"""``andactl generate``: talk to a dense, sliced or packed model.

Generated text streams to stdout as it is produced; the speed line (new tokens, seconds, the
first token's latency and the decode rate after it) goes to stderr. ``--chat`` wraps the prompt in the tokenizer's chat template.
"""
from __future__ import annotations

import sys
import time

import click

from andactl.cli.common import FiniteFloat, attention_option, device_option, run_dtype_option, seed_option
from andactl.errors import ConfigError


def speed_line(n: int, seconds: float, token_times: list[float], t0: float) -> str:
    """``n`` new tokens in ``seconds``, split into the first token's latency (prompt included) and the
    decode rate of the rest, from the times each generated token arrived (``token_times``, from
    ``t0``): the whole call's tokens/s would count the prompt's prefill as decoding."""
    line = f"{n} token{'' if n == 1 else 's'} in {seconds:.2f} s"
    if n >= 2 and len(token_times) == n and token_times[-1] > token_times[0]:
        rate = (n - 1) / (token_times[-1] - token_times[0])
        return line + f": first token after {token_times[0] - t0:.2f} s, then {rate:.2f} tokens/s"
    return line + (f": {n / seconds:.2f} tokens/s" if n and seconds > 0 else "")


def build_inputs(tokenizer, prompt: str, chat: bool):
    """input_ids [1, T] of ``prompt`` (through the chat template when ``chat``); ConfigError when
    the tokenizer has no chat template."""
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("--chat: this model's tokenizer has no chat template (drop --chat)")
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
    else:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
    return ids


def context_length(config) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_fits(n_prompt: int, max_new_tokens: int, limit: int | None) -> None:
    """ConfigError (one line) when prompt + new tokens exceed the model's context."""
    if n_prompt == 0:
        raise ConfigError("--prompt is empty after tokenization")
    if limit is not None and n_prompt + max_new_tokens > limit:
        raise ConfigError(f"prompt is {n_prompt} tokens; with --max-new-tokens {max_new_tokens} that exceeds the "
                          f"model's context of {limit} tokens")


@click.command("generate")
@click.argument("model")
@click.option("--prompt", required=True, help="Text to continue (or the user message with --chat).")
@click.option("--max-new-tokens", type=click.IntRange(1, None), default=64, show_default=True)
@click.option("--temperature", type=FiniteFloat(0.0, None), default=0.0, show_default=True,
              help="0 = greedy decoding; > 0 samples.")
@click.option("--chat/--no-chat", default=False, show_default=True, help="Use the tokenizer's chat template.")
@seed_option(0, "Seed for sampling.")
@click.option("--backend", type=click.Choice(["auto", "cuda", "cpp", "reference"]), default="auto", show_default=True,
              help="Kernel backend for Anda-packed modules.")
@attention_option
@run_dtype_option
@device_option
def generate(model, prompt, max_new_tokens, temperature, chat, seed, backend, attention, dtype, device):
    """Generate text from MODEL (alias, HF folder, .gguf or andactl artifact), streamed to stdout."""
    import torch
    from transformers import TextStreamer

    from andactl.kernels.backend import set_model_backend
    from andactl.models import decode_step
    from andactl.models.kv_cache import reserved_cache_arg
    from andactl.models.loading import load_model, parse_device, resolve_dtype_name

    parse_device(device)
    dtype = resolve_dtype_name(dtype, device)
    loaded = load_model(model, dtype, device)
    tok = loaded.tokenizer
    ids = build_inputs(tok, prompt, chat)
    check_fits(int(ids.shape[1]), max_new_tokens, context_length(loaded.model.config))
    set_model_backend(loaded.model, backend, device)
    if attention == "auto":
        decode_step.switch_on(loaded.model)
    torch.manual_seed(seed)

    class _Stdout(TextStreamer):
        """Streams the text and times every ``put``: the prompt's, then one per generated token."""

        times: list[float] = []

        def put(self, value):
            self.times.append(time.perf_counter())
            super().put(value)

        def on_finalized_text(self, text: str, stream_end: bool = False):
            sys.stdout.write(text + ("\n" if stream_end else ""))
            sys.stdout.flush()

    streamer = _Stdout(tok, skip_prompt=True, skip_special_tokens=True)
    kw = dict(max_new_tokens=max_new_tokens, streamer=streamer, use_cache=True,
              pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    kw.update(do_sample=True, temperature=temperature) if temperature > 0 else kw.update(do_sample=False)
    if attention == "auto":
        kw.update(reserved_cache_arg(loaded.model))
    ids = ids.to(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
    dt = time.perf_counter() - t0
    n = int(out.shape[1] - ids.shape[1])
    click.echo(speed_line(n, dt, streamer.times[1:], t0) + f" (prompt {ids.shape[1]} tokens, {dtype}, {device})", err=True)


COMMANDS = [generate]
