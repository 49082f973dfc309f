"""Scratch (stop 54): recover's --train-data self, but each sampled sequence starts from the prompt
of an alpaca training (held-out) sequence, through its "### Response:" line (at most PREFIX tokens),
instead of one uniform token: the teacher writes the answers to alpaca's instructions. Run as
`python seeded.py recover ...` (the andactl CLI, with Recover._text patched; e1.sh ran it from
/work/s54, peek.py printed three samples)."""
import logging, os, sys, time
import torch
from andactl.passes import recover as rec
from andactl.passes.recover_data import TrainText, dataset_text
from andactl.data.model_text import MIX_DATASET, model_sampling_rows, model_vocab, draw_tokens

PREFIX = int(os.environ.get("PREFIX", "128"))  # the longest prompt kept
RESPONSE = (3757, 14212, 42)  # "###", " Response", ":" in SmolLM2's tokenizer


def prompt_lengths(rows):
    """Per row: the tokens up to and including the newline after the first "### Response:" (at
    most PREFIX; PREFIX where the window holds none)."""
    out = []
    for r in rows.tolist():
        n = PREFIX
        for i in range(min(len(r) - 3, PREFIX)):
            if tuple(r[i:i + 3]) == RESPONSE:
                n = min(i + 4, PREFIX)
                break
        out.append(n)
    return torch.tensor(out)
log = logging.getLogger("andactl")


@torch.no_grad()
def sample_seeded(model, vocab_size, prefix, seqlen, seed, batch_size, device):
    from andactl.models import decode_step
    from andactl.models.kv_cache import cache_kwargs, reserved_cache_arg
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    out = []
    key, extra = cache_kwargs(model)
    plen = prompt_lengths(prefix)
    with decode_step.enabled(model):
        for start in range(0, prefix.shape[0], batch_size):
            n = min(batch_size, prefix.shape[0] - start)
            ids = torch.empty(n, seqlen, dtype=torch.long)
            ids[:] = prefix[start:start + n, :seqlen]
            keep = plen[start:start + n]
            past = reserved_cache_arg(model)
            for pos in range(1, seqlen):
                res = model(input_ids=ids[:, pos - 1:pos].to(device), use_cache=True, **past, **extra)
                past = {key: res[key]}
                if bool((keep > pos).all()):
                    continue
                probs = torch.softmax(res.logits[:, -1, :vocab_size].float(), dim=-1)
                drawn = draw_tokens(probs.cpu(), gen)[:, 0]
                ids[:, pos] = torch.where(keep > pos, ids[:, pos], drawn)
            out.append(ids)
    return torch.cat(out)


def _text(ctx, cfg, teacher, seed):
    assert cfg.train_data == "self", cfg.train_data
    count = cfg.steps * cfg.batch_size * cfg.grad_accum
    data = dataset_text(MIX_DATASET, ctx.tokenizer, count, cfg.held_out, cfg.seqlen, seed, ctx.data_dir)
    rows = torch.cat([data.train.reshape(-1, cfg.seqlen), data.held_out.reshape(-1, cfg.seqlen)])
    prefix = rows
    lens = prompt_lengths(rows)
    log.info("seeded: prompt lengths mean %.1f, min %d, max %d, %d capped", lens.float().mean(), lens.min(), lens.max(), int((lens == PREFIX).sum()))
    vocab = model_vocab(teacher.model, ctx.tokenizer)
    t0 = time.perf_counter()
    nrows = model_sampling_rows(teacher.model, cfg.seqlen, prefix.shape[0])
    ids = sample_seeded(teacher.model, vocab, prefix, cfg.seqlen, seed, nrows, ctx.device)
    took = time.perf_counter() - t0
    log.info("seeded: %d sequences continuing alpaca prompts in %.1f s (%d at a time)", ids.shape[0], took, nrows)
    return TrainText(ids[:count], ids[count:], "self-seeded-alpaca")


rec.Recover._text = staticmethod(_text)
from andactl.cli.main import main
sys.exit(main())
