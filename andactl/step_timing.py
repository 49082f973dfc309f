"""``recover --minutes``: one optimiser step of the run timed on this machine, in a child process.

The time estimate (``--dry-run``) scales torch GEMM rates probed for a few milliseconds; on the
2-core Xeon its training row has read 1.08x to 1.33x the measured time from one hour to the next
(docs/RECOVER.md, thirtieth round), so a 20-minute budget ended 3 to 4 minutes early. Timing the
run's own step removes that error: a child process loads the same model (and the in-process
teacher), attaches the same trainables under the same settings and runs TIMED_STEPS optimiser
steps of ``recover_train.train`` on random token ids of the run's shape. Invariant: nothing of it
touches this process (its RNG, its allocator, torch's thread pools), so the run that follows is
the one ``--steps N`` gives.
"""
from __future__ import annotations

import logging
import statistics

import torch

log = logging.getLogger("andactl")

TIMED_STEPS = 4  # the first is a warm-up (packing the heads, the allocator's first blocks); the median of the rest counts


def time_steps(model: str, params: dict, teacher: str | None, dtype: str, device: str, seed: int) -> float | None:
    """Median seconds of one optimiser step of ``recover`` with ``params`` (the CLI's options) on
    ``model``, after one warm-up step; None with ``teacher_topk`` (its targets come from a phase
    this does not time)."""
    from andactl.data.model_text import model_vocab
    from andactl.models.loading import load_model, parse_device, parse_dtype
    from andactl.passbase import parse_config
    from andactl.passes.recover import RecoverConfig, train_settings
    from andactl.passes.recover_lora import attach
    from andactl.passes.recover_teacher import load_teacher
    from andactl.passes.recover_train import Student, train

    cfg = parse_config(RecoverConfig, {**params, "steps": TIMED_STEPS}, "recover")
    if cfg.teacher_topk:
        return None
    run_dtype, run_device = parse_dtype(dtype), parse_device(device)
    loaded = load_model(model, dtype, device)
    kd_teacher = load_teacher(teacher, run_dtype, run_device, loaded.tokenizer) if cfg.method == "kd" else None
    torch.manual_seed(seed)
    trainable = attach(loaded.model, loaded.adapter, cfg.full, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
    vocab = model_vocab(loaded.model, loaded.tokenizer)
    rows = TIMED_STEPS * cfg.batch_size * cfg.grad_accum
    ids = torch.randint(0, vocab, (rows + 1, cfg.seqlen), generator=torch.Generator().manual_seed(seed))
    settings = train_settings(cfg, seed, quiet=True)
    settings.eval_every = TIMED_STEPS + 1  # the held-out passes (one row) run outside the timed steps
    hist = train(Student(loaded.model, loaded.adapter), kd_teacher, trainable.params, ids[:rows].to(run_device),
                 ids[rows:].to(run_device), settings, run_device)
    return statistics.median(hist.step_seconds[1:])


def timed_step_seconds(model: str, params: dict, teacher: str | None, dtype: str, device: str,
                       seed: int) -> float | None:
    """``time_steps`` run in a child process (same interpreter, same environment); None, with one
    warning, when the child fails (it may run out of memory where the run itself would have too)."""
    import json
    import subprocess
    import sys

    log.info("recover --minutes: timing %d training steps in a child process", TIMED_STEPS)
    args = json.dumps([model, params, teacher, dtype, device, seed])
    code = ("import json, sys; from andactl.step_timing import time_steps; "
            "print('STEP_SECONDS', json.dumps(time_steps(*json.loads(sys.argv[1]))))")
    res = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True)
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("STEP_SECONDS "):
            return json.loads(line.split(" ", 1)[1])
    last = (res.stderr.strip().splitlines() or ["no output"])[-1]
    log.warning("recover --minutes: timing a step in a child process failed (exit %d: %s); the step count "
                "rests on the estimate alone", res.returncode, last)
    return None
