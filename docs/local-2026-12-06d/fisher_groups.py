"""Scratch (stop 47): `andactl slice ... --basis fisher` with the K-FAC estimate split into two token groups:
each sequence's first token (the attention sink, whose massive activations own most of H in the middle layers)
and the rest.  est(R) = sum_k tr((R^T F_k R)(R^T H_k R)) / N_k, instead of tr((R^T F R)(R^T H R)) / N.
usage: GROUPS=1|0 python fisher_groups.py [andactl slice args...]   (GROUPS=0: the shipped estimate, for a check)"""
import os
import sys

import torch

from andactl.passes import pca, residual_fisher, rotate
from andactl.passes.pca import _fixed_signs, _ordered_by, pca_basis

GROUPS = os.environ.get("GROUPS", "1") == "1"
F0 = {}
orig_add = pca.GramAccumulator.add


@torch.no_grad()
def add(self, x, mask=None):
    orig_add(self, x, mask)
    first = x.reshape(-1, x.shape[-2], x.shape[-1])[:, 0, :].to(torch.float64).to(self.H.device)
    if not hasattr(self, "H0"):
        self.H0 = torch.zeros_like(self.H)
        self.n0 = 0
    self.H0.addmm_(first.T, first)
    self.n0 += first.shape[0]


pca.GramAccumulator.add = add


def collect(model, adapter, calibration, seed, advance=None):
    """The shipped collect_residual_fisher, plus each point's position-0 share F0[index]."""
    from andactl.models.capture import resident_device
    device = resident_device(model)
    points = residual_fisher.residual_points(adapter)
    D = adapter.hidden_size
    fisher = [torch.zeros(D, D, dtype=torch.float64, device=device) for _ in points]
    for _, index in points:
        F0[index] = torch.zeros(D, D, dtype=torch.float64, device=device)
    state = {}

    def watch(index):
        def hook(module, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            if index == 0:
                x = x.detach().requires_grad_(True)
                if args:
                    args = (x, *args[1:])
                else:
                    kwargs = {**kwargs, "hidden_states": x}

            def on_grad(g):
                rows = g.reshape(-1, D)[state["keep"]].to(torch.float64)
                fisher[index].addmm_(rows.T, rows)
                F0[index].addmm_(rows[:1].T, rows[:1])

            x.register_hook(on_grad)
            return args, kwargs
        return hook

    frozen = [(q, q.requires_grad) for q in model.parameters()]
    for q, _ in frozen:
        q.requires_grad_(False)
    handles = [m.register_forward_pre_hook(watch(i), with_kwargs=True) for m, i in points]
    sample = calibration.first_sample
    try:
        with torch.enable_grad():
            for batch in calibration.batches():
                for row in range(batch["input_ids"].shape[0]):
                    mask = batch["attention_mask"][row: row + 1].to(device)
                    state["keep"] = mask.reshape(-1) != 0
                    assert bool(state["keep"][0])
                    ids = batch["input_ids"][row: row + 1].to(device)
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    logits = logits.float().reshape(-1, logits.shape[-1])[state["keep"]]
                    with torch.no_grad():
                        gen = residual_fisher.label_generator(seed, sample)
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


def grouped_estimate(R, groups):
    return sum(torch.trace((R.T @ F @ R) @ (R.T @ H @ R)) / n for H, F, n in groups)


@torch.no_grad()
def grouped_basis(H, groups, d, iters=pca.FISHER_ITERS, lr=pca.FISHER_LR):
    """pca.fisher_basis with the grouped estimate."""
    vals, Q = pca_basis(H)
    D = H.shape[0]
    if d >= D:
        return vals, Q, 1.0
    H = H.to(torch.float64)
    start = grouped_estimate(Q[:, d:], groups)
    if not float(start) > 0.0:
        return vals, Q, 1.0
    A = Q[:, d:].clone().requires_grad_(True)
    best, best_A = 1.0, A.detach().clone()
    opt = torch.optim.Adam([A], lr=lr)
    with torch.enable_grad():
        for _ in range(iters):
            ratio = grouped_estimate(torch.linalg.qr(A)[0], groups) / start
            value = float(ratio.detach())
            if value < best:
                best, best_A = value, A.detach().clone()
            opt.zero_grad()
            ratio.backward()
            opt.step()
    dropped = torch.linalg.qr(best_A)[0]
    kept = torch.linalg.svd(torch.eye(D, dtype=torch.float64) - dropped @ dropped.T)[0][:, :d]
    (kv, kq), (dv, dq) = _ordered_by(H, kept), _ordered_by(H, dropped)
    return torch.cat([kv, dv]), _fixed_signs(torch.cat([kq, dq], dim=1)), best


def call(self, acc, device, d):
    acc.all_reduce()
    F = self.fisher[self.point].to(acc.H.device)
    F0p = F0[self.point].to(acc.H.device)
    H, H0 = acc.H, acc.H0
    n0, n1 = acc.n0, acc.tokens - acc.n0
    sh, sf = float(H0.trace() / H.trace()), float(F0p.trace() / F.trace())
    # the shipped K-FAC estimate of PCA's cut, against the grouped one's two terms
    _, Qp = pca_basis(H)
    R = Qp[:, d:]
    g1 = float(torch.trace((R.T @ (F - F0p) @ R) @ (R.T @ (H - H0) @ R)) / n1)
    g0 = float(torch.trace((R.T @ F0p @ R) @ (R.T @ H0 @ R)) / n0)
    if GROUPS:
        vals, Q, ratio = grouped_basis(H, [(H - H0, F - F0p, n1), (H0, F0p, n0)], d)
    else:
        vals, Q, ratio = pca.fisher_basis(H, F, d)
    print(f"point {self.point}: H0 share {sh:.3f}  F0 share {sf:.4f}  PCA cut: rest {g1:.3e} first {g0:.3e}"
          f"  ratio {ratio:.4f}", file=sys.stderr, flush=True)
    self.ratios.append(ratio)
    self.point += 1
    return rotate.broadcast(vals), rotate.broadcast(Q).to(device)


rotate.collect_residual_fisher = collect
rotate._Bases.__call__ = call
from andactl.cli.main import main  # noqa: E402

sys.argv = ["andactl", "slice"] + sys.argv[1:]
main()
