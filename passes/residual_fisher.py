"""The loss gradient's Gram matrix at every residual-stream point SliceGPT rotates (``rotate``'s
``basis: fisher``).

At each point ``p`` (layer 0's input; per sequential block its mid residual, the input of the MLP's
norm, and its output; per parallel block its output) ``F_p = sum_t g_t g_t^T`` over the calibration
tokens, ``g_t`` the gradient of the loss with respect to that token's residual vector. The loss is
the cross-entropy against labels drawn from the model's own next-token distribution (a Monte-Carlo
Fisher: to second order, the expected KL divergence a small change ``dx`` of the residual costs is
``dx^T F dx / 2`` per token), so no label text is needed and the result measures the model, not
the calibration text's fit to it. Computed on the fused, unrotated model, where every point's
coordinates are the ones ``rotate`` keeps its calibration signals in.
"""
from __future__ import annotations

import torch

from andactl.models.capture import resident_device
from andactl.passes.pca import add_gram_

FISHER_SEED_OFFSET = 7919  # the label sampler's seeds start at the calibration seed + this (own RNG stream)
FISHER_SEED_STRIDE = 1_000_003  # a prime > any sample count: seed s's streams never meet seed s + 1's


def label_generator(seed: int, sample: int) -> torch.Generator:
    """The generator sequence ``sample`` (its index in the whole calibration set) draws its labels
    from: a function of (seed, sample) alone, so any split of the set over ranks draws the same."""
    start = (int(seed) + FISHER_SEED_OFFSET) * FISHER_SEED_STRIDE
    return torch.Generator(device="cpu").manual_seed((start + sample) % 2**63)


def residual_points(adapter) -> list[tuple]:
    """``(module, index)`` pairs: the module whose input (a forward pre-hook's first argument, or
    ``hidden_states``) is residual point ``index``, in the order ``rotate`` computes its bases."""
    layers = list(adapter.layers())
    step = 1 if adapter.parallel_blocks else 2
    points = [(layers[0], 0)]
    for i, layer in enumerate(layers):
        if not adapter.parallel_blocks:
            points.append((adapter.mlp_norm(layer), step * i + 1))
        nxt = layers[i + 1] if i + 1 < len(layers) else adapter.final_norm()
        points.append((nxt, step * (i + 1)))
    return points


def collect_residual_fisher(model, adapter, calibration, seed: int, advance=None) -> list[torch.Tensor]:
    """``F_p`` (float64, ``[D, D]``) for every residual point in ``residual_points`` order, summed
    over the calibration batches' non-padding tokens; ``advance()`` (if given) after each sequence.

    Invariant: only gradients with respect to activations are computed (parameters get none; layer
    0's input is the only leaf that requires grad); one sequence per forward and backward (the
    backward keeps every layer's activations: batching would multiply them); each sequence's labels
    are drawn from ``label_generator(seed, its index in the whole set)`` (``calibration.first_sample``
    + its row), so equal inputs give equal matrices and ranks summing their shares' matrices get
    the one-process sum; the model is unchanged."""
    device = resident_device(model)
    points = residual_points(adapter)
    D = adapter.hidden_size
    fisher = [torch.zeros(D, D, dtype=torch.float64, device=device) for _ in points]
    state: dict = {}

    def watch(index):
        def hook(module, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            if index == 0:  # the leaf every later gradient flows back to
                x = x.detach().requires_grad_(True)
                if args:
                    args = (x, *args[1:])
                else:
                    kwargs = {**kwargs, "hidden_states": x}

            def on_grad(g):
                rows = g.reshape(-1, D)[state["keep"]].to(torch.float64)
                add_gram_(fisher[index], rows)

            x.register_hook(on_grad)
            return args, kwargs
        return hook

    frozen = [(q, q.requires_grad) for q in model.parameters()]
    for q, _ in frozen:
        q.requires_grad_(False)
    handles = [module.register_forward_pre_hook(watch(index), with_kwargs=True) for module, index in points]
    sample = calibration.first_sample
    try:
        with torch.enable_grad():
            for batch in calibration.batches():
                for row in range(batch["input_ids"].shape[0]):  # one sequence per backward: its activations
                    mask = batch["attention_mask"][row : row + 1].to(device)
                    state["keep"] = mask.reshape(-1) != 0
                    ids = batch["input_ids"][row : row + 1].to(device)
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    logits = logits.float().reshape(-1, logits.shape[-1])[state["keep"]]
                    with torch.no_grad():
                        gen = label_generator(seed, sample)
                        labels = torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=gen)[:, 0]
                    sample += 1
                    torch.nn.functional.cross_entropy(logits, labels.to(device), reduction="sum").backward()
                    del logits
                    if advance is not None:
                        advance()
    finally:
        for h in handles:
            h.remove()
        for q, flag in frozen:
            q.requires_grad_(flag)
    return fisher
