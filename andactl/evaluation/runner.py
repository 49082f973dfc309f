"""Evaluate one loaded model on a list of tasks; returns ``{task: {metric: value}}``."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from andactl.data.datasets import load_text_rows
from andactl.evaluation.harness import PPL_TASKS, zero_shot
from andactl.evaluation.perplexity import perplexity
from andactl.instruments import megabytes, peak_rss_bytes

log = logging.getLogger("andactl")


def evaluate(loaded, tasks: list[str], data_dir: Path | None, limit: int | None = None, batch_size: int = 1,
             seqlen: int = 2048, device: str = "cpu", progress: bool = True) -> dict[str, dict]:
    """Runs perplexity tasks with our convention and zero-shot tasks through lm-eval (its progress
    bars on stderr only with ``progress``: ``-q`` asks for none).

    ``limit`` caps perplexity windows and zero-shot documents alike. Each task's entry carries
    its wall ``seconds`` and the process peak RSS (MB) after it.
    """
    results: dict[str, dict] = {}
    zs = [t for t in tasks if t not in PPL_TASKS]
    for task in (t for t in tasks if t in PPL_TASKS):
        dataset, split = PPL_TASKS[task]
        rows = load_text_rows(dataset, split, data_dir)
        log.info("%s: perplexity, seqlen %d%s", task, seqlen, f", first {limit} windows" if limit else "")
        res = perplexity(loaded.model, loaded.tokenizer, rows, seqlen=seqlen, batch_size=batch_size,
                         limit=limit, device=device)
        results[task] = {**res.to_dict(), "peak_rss_mb": megabytes(peak_rss_bytes())}
    if zs:
        t0 = time.perf_counter()
        log.info("%s: zero-shot through lm-eval%s", ",".join(zs), f", first {limit} documents" if limit else "")
        scores = zero_shot(loaded.model, loaded.tokenizer, zs, data_dir, limit=limit,
                           batch_size=max(batch_size, 1), device=device, progress=progress)
        seconds = round(time.perf_counter() - t0, 2)
        for task in zs:
            results[task] = {**scores[task], "seconds_all_zero_shot": seconds,
                             "peak_rss_mb": megabytes(peak_rss_bytes())}
    return {t: results[t] for t in tasks}
