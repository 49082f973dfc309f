"""Scratch (stop 47): `andactl slice ... --basis fisher` with each point's subspace search run on the DENSE model's
signal Gram (accumulated in the same forwards that give F) instead of the sequential sweep's (the sliced model's
signals, upstream already cut); the sweep itself, the projections and the artifact are unchanged.
usage: python fisher_denseH.py [andactl slice args...]"""
import sys

import torch

from andactl.passes import pca, residual_fisher, rotate

HD = {}
orig_collect = residual_fisher.collect_residual_fisher


def collect(model, adapter, calibration, seed, advance=None):
    D = adapter.hidden_size
    points = residual_fisher.residual_points(adapter)

    def gram(index):
        def hook(module, args, kwargs):
            x = (args[0] if args else kwargs["hidden_states"]).detach().reshape(-1, D).to(torch.float64)
            HD.setdefault(index, torch.zeros(D, D, dtype=torch.float64)).addmm_(x.T, x)
        return hook

    # registered before collect's own hooks: they see the residual before point 0's leaf is made (same values)
    hs = [m.register_forward_pre_hook(gram(i), with_kwargs=True) for m, i in points]
    try:
        return orig_collect(model, adapter, calibration, seed, advance)
    finally:
        for h in hs:
            h.remove()


def call(self, acc, device, d):
    acc.all_reduce()
    F = self.fisher[self.point].to(acc.H.device)
    _, Qd, ratio = pca.fisher_basis(HD[self.point].to(acc.H.device), F, d)
    # values: the sweep's H in the chosen basis (kept_variance's share of what the sliced model carries)
    vals = torch.diagonal(Qd.T @ acc.H.to(torch.float64) @ Qd).clone()
    print(f"point {self.point}: ratio {ratio:.4f}", file=sys.stderr, flush=True)
    self.ratios.append(ratio)
    self.point += 1
    return rotate.broadcast(vals), rotate.broadcast(Qd).to(device)


rotate.collect_residual_fisher = collect
rotate._Bases.__call__ = call
from andactl.cli.main import main  # noqa: E402

sys.argv = ["andactl", "slice"] + sys.argv[1:]
main()
