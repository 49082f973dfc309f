"""Stop 57: one fisher_basis search at SmolLM2's shape (D 576, keep 432) against the dry run's two
models of it: the FLOP model (FISHER_SEARCH_FLOPS at the probed float64 rate) and FISHER_ITERS x the
timed step (pca.search_step_seconds)."""
import time

import torch

from andactl.dry_run import FISHER_SEARCH_FLOPS, cpu_flops
from andactl.passes.pca import FISHER_ITERS, fisher_basis, search_step_seconds

torch.manual_seed(0)
D, d = 576, 432
X = torch.randn(4096, D, dtype=torch.float64) * torch.linspace(0.1, 3, D, dtype=torch.float64)
G = torch.randn(4096, D, dtype=torch.float64)
H, F = X.T @ X, G.T @ G
for rep in range(3):
    rates = cpu_flops(torch.float32)
    flop_model = FISHER_ITERS * FISHER_SEARCH_FLOPS * D**2 * (D - d) / rates["float64"]
    step = search_step_seconds(D, D - d)
    t0 = time.perf_counter()
    fisher_basis(H, F, d)
    dt = time.perf_counter() - t0
    print(f"fisher_basis D={D} d={d}: {dt:.2f} s measured; FLOP model {flop_model:.2f} s ({dt / flop_model:.2f}x); "
          f"timed step {step * 1e3:.2f} ms x {FISHER_ITERS} = {step * FISHER_ITERS:.2f} s ({dt / (step * FISHER_ITERS):.2f}x)")
