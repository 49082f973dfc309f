"""Shared CLI plumbing: error handling, logging, output formats, common options."""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path

import click

from andactl.errors import AndaError, Interrupted, interrupt_message, storage_error


class AndaGroup(click.Group):
    """Click group that turns every failure into ONE line on stderr and a non-zero exit code.

    AndaError (bad input) -> exit 2; Ctrl-C -> exit 130; SIGTERM -> exit 143; anything else -> exit 1 with the
    exception type (set ANDACTL_DEBUG=1 for the traceback).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Like click's standalone mode, but a usage error is ONE line on stderr (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            _fail(f"error: {' '.join(err.format_message().split())} (see --help)", err.exit_code)  # click's may span lines
        except click.exceptions.Abort:
            _fail("interrupted: nothing was written", 130)
        except KeyboardInterrupt as err:
            _fail(*interrupt_message(err))
        finally:
            if main_thread and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AndaError as err:
            _fail(f"error: {err}", err.exit_code)
        except KeyboardInterrupt as err:
            _fail(*interrupt_message(err))
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as err:
            if os.environ.get("ANDACTL_DEBUG"):
                raise
            if storage_error(err):  # the machine's state, wherever it struck (a cache, a spill folder)
                where = f" ({err.filename})" if err.filename else ""
                _fail(f"error: {err.strerror}{where}: free space there or point the output, ANDACTL_CACHE_DIR or "
                      "TMPDIR elsewhere", 2)
            msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
            _fail(f"error: unexpected internal failure ({type(err).__name__}: {msg}); this is a bug in andactl, "
                  "please report it (set ANDACTL_DEBUG=1 for a traceback)", 1)


def _on_sigterm(signum, frame) -> None:
    """SIGTERM (timeout, docker stop, schedulers) stops like Ctrl-C: cleanup runs, exit 143."""
    raise Interrupted(143)


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def setup_logging(verbose: int, quiet: bool) -> None:
    """Logs go to stderr through rich. Third-party loggers stay at WARNING (the hub client at
    ERROR: its per-retry warnings) by default and under -q, which wins over -v; -v shows the hub
    client's warnings, -vv every library's INFO (torch's, transformers')."""
    from rich.logging import RichHandler

    from andactl.consoles import stderr_console

    verbose = 0 if quiet else verbose
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = RichHandler(console=stderr_console(), show_path=False, show_time=False, markup=False)
    root = logging.getLogger("andactl")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for name in ("transformers", "lm_eval", "lm-eval", "datasets", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.INFO if verbose > 1 else logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        (hf_logging.set_verbosity_error, hf_logging.set_verbosity_warning, hf_logging.set_verbosity_info)[min(verbose, 2)]()
        hf_logging.disable_progress_bar()
        # the hub client warns once per retry (20 lines for a hub id offline) before the error andactl
        # reports in one line; with -v they show. Its own import sets its level, so set it through it.
        from huggingface_hub.utils import logging as hub_logging

        (hub_logging.set_verbosity_error, hub_logging.set_verbosity_warning, hub_logging.set_verbosity_info)[min(verbose, 2)]()
    except Exception:  # pragma: no cover - transformers missing is reported elsewhere
        pass


def emit(data, fmt: str, human) -> None:
    """Writes ``data`` to stdout as JSON (fmt == "json") or calls ``human(data)``."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human(data)


format_option = click.option("--format", "fmt", type=click.Choice(["human", "json"]), default="human",
                             show_default=True, help="Output format on stdout.")
data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                               envvar="ANDACTL_DATA_DIR", help="Local data directory (laid out like shared/data).")
dtype_option = click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16", "float64"]),
                            default="float32", show_default=True)
storage_dtype_option = click.option(
    "--storage-dtype", default="fp16", show_default=True, metavar="bf16|fp16|fp32",
    help="Dtype of every non-packed tensor in model.safetensors (loaded back into --dtype).")
shortcuts_option = click.option(
    "--shortcuts", default="float", show_default=True, metavar="float|int8",
    help="SliceGPT shortcut matrices on disk: the storage dtype, or group-wise INT8 (half the bytes).")


class FiniteFloat(click.FloatRange):
    """click's FloatRange that also refuses nan and inf: every comparison with nan is false, so a
    FloatRange with bounds lets it through, and inf passes an open upper end."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def seed_option(default: int, help: str | None = None):
    """--seed: any integer torch.manual_seed takes (64 bits; a larger one was an internal error)."""
    from andactl.passbase import SEED_MAX, SEED_MIN

    return click.option("--seed", type=click.IntRange(SEED_MIN, SEED_MAX), default=default, show_default=True, help=help)


run_dtype_option = click.option(
    "--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16", "float64"]), default="auto",
    show_default=True, help="Run dtype; auto = bfloat16 where the CPU has native bf16 (AVX512-BF16/AMX) or on CUDA, else float32.")
_dry_run_flag = click.option("--dry-run", is_flag=True,
                             help="Print estimated peak RAM, device memory, disk and time per pass; read no weights.")
_max_memory_flag = click.option("--max-memory", type=FiniteFloat(min=0, min_open=True), default=None, metavar="GB",
                                help="Refuse up front (before loading) a run whose --dry-run peak host RAM exceeds GB.")


def int4_weight_options(f):
    """--group-size, --asymmetric/--symmetric (the quantize_weights pass; its defaults)."""
    from andactl.passes.quantize_weights import QuantizeWeightsConfig

    f = click.option("--asymmetric/--symmetric", default=not QuantizeWeightsConfig.symmetric, show_default=True,
                     help="INT4 with per-group zero points, or symmetric (zero point 8).")(f)
    return click.option("--group-size", type=int, default=QuantizeWeightsConfig.group_size, show_default=True,
                        help="INT4 group size (multiple of 64, or -1 per row).")(f)


def table_options(f):
    """--head, --embeddings, --table-group, --table-clip, --table-method (the quantize_tables pass)."""
    from andactl.formats.table_quant import DEFAULT_TABLE_GROUP

    for opt in reversed([
        click.option("--head", type=click.Choice(["int8", "int4", "none"]), default="int8", show_default=True,
                     help="LM head storage: group-wise symmetric INT8/INT4 with fp16 scales, or none (storage dtype)."),
        click.option("--embeddings", type=click.Choice(["int8", "int4", "none"]), default="int8", show_default=True,
                     help="Token embedding storage: a quantized lookup table (rows dequantized when gathered), or none."),
        click.option("--table-group", type=click.IntRange(min=1), default=DEFAULT_TABLE_GROUP, show_default=True,
                     help="Group size of the quantized head/embedding tables (smaller: more scales, less error)."),
        click.option("--table-clip", is_flag=True,
                     help="Choose each table group's scale by least squared error over clipping ratios 1.0..0.5 of its absmax."),
        click.option("--table-method", type=click.Choice(["rtn", "gptq"]), default="rtn", show_default=True,
                     help="Head table codes: round to nearest, or GPTQ on the calibration text's final hidden states "
                          "(a tied table shared with the embeddings gets the same codes)."),
    ]):
        f = opt(f)
    return f


def search_loss_option(f):
    """--search-loss (passes/search_losses.py; torch-free)."""
    from andactl.passes.search_losses import DEFAULT_SEARCH_LOSS, SEARCH_LOSSES

    return click.option("--search-loss", type=click.Choice(list(SEARCH_LOSSES)), default=DEFAULT_SEARCH_LOSS, show_default=True,
                        help="How the search judges a tuple against --tolerance: ppl ratio - 1, or exp(mean KL to the "
                             "W4A16 model's next-token distribution) - 1 (docs/SEARCH.md).")(f)


def dry_run_option(f):
    """Adds --dry-run and --max-memory (both answered from the dry-run estimate)."""
    return _dry_run_flag(_max_memory_flag(f))


def artifact_output_options(f):
    """Adds -o/--output (required) and --overwrite: the artifact a command writes, and leave to
    replace a non-empty directory there (formats/output_dir.py decides what may be replaced)."""
    f = click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")(f)
    return click.option("-o", "--output", required=True, help="Artifact directory to write.")(f)


stream_option = click.option(
    "--stream/--no-stream", default=None,
    help="Layer-wise streaming: decoder layers read from the source one at a time and spilled next to the output, "
         "so the model is never whole in memory. Default: on when the --dry-run peak exceeds --max-memory "
         "(default: a safe share of free RAM). See docs/MEMORY.md.")
spill_option = click.option(
    "--spill-activations/--no-spill-activations", default=None,
    help="Keep calibration activations in disk-backed buffers next to the output instead of RAM. Default: on when "
         "the run's estimate exceeds --max-memory and fits with them on disk. See docs/MEMORY.md.")
attention_option = click.option(
    "--attention", type=click.Choice(["auto", "sdpa"]), default="auto", show_default=True,
    help="Decode path: auto = a KV cache that grows in place and andactl's attention kernel for one-token steps "
         "of unpadded sequences where it applies (CPU with AVX2 or AVX-512), torch's SDPA elsewhere, and for "
         "Llama / Mistral / Qwen2 / Qwen3 / SmolLM3 a lean layer loop for those steps and for unpadded "
         "prefills (fused norm and rotary ops); sdpa = transformers' own path (its forward, SDPA attention, "
         "its DynamicCache).")
device_option = click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")


def calibration_options(samples: int = 128, seqlen: int = 2048, batch_size: int = 16):
    """Decorator adding --cal-data/--cal-split/--cal-samples/--cal-seqlen/--cal-batch-size/--seed."""

    def decorate(f):
        opts = [
            click.option("--cal-data", default="alpaca", show_default=True, help="Calibration dataset (alpaca, ptb, wikitext2, c4); self: text sampled from the model itself "
                         "(data-free); mix: half alpaca (--cal-split), half self."),
            click.option("--cal-split", default="train", show_default=True),
            click.option("--cal-samples", type=click.IntRange(min=1), default=samples, show_default=True),
            click.option("--cal-seqlen", type=click.IntRange(min=8), default=seqlen, show_default=True),
            click.option("--cal-batch-size", type=click.IntRange(min=1), default=batch_size, show_default=True),
            seed_option(42),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


def calibration_dict(kw: dict) -> dict:
    return {"dataset": kw["cal_data"], "split": kw["cal_split"], "samples": kw["cal_samples"],
            "seqlen": kw["cal_seqlen"], "batch_size": kw["cal_batch_size"], "seed": kw["seed"]}
