"""Stop 46: one fisher_basis search at SmolLM2's shape (D 576, keep 432) against the dry-run's rate probe."""
import time

import torch

from andactl.dry_run import FISHER_SEARCH_FLOPS, cpu_flops
from andactl.passes.pca import FISHER_ITERS, fisher_basis

torch.manual_seed(0)
D, d = 576, 432
X = torch.randn(4096, D, dtype=torch.float64) * torch.linspace(0.1, 3, D, dtype=torch.float64)
G = torch.randn(4096, D, dtype=torch.float64)
H, F = X.T @ X, G.T @ G
rates = cpu_flops(torch.float32)
for rep in range(2):
    t0 = time.perf_counter()
    fisher_basis(H, F, d)
    dt = time.perf_counter() - t0
    model = FISHER_ITERS * FISHER_SEARCH_FLOPS * D**2 * (D - d) / rates["float64"]
    print(f"fisher_basis D={D} d={d}: {dt:.2f} s measured, {model:.2f} s modelled "
          f"(float64 rate {rates['float64']:.3g}, float32 {rates['float32']:.3g}); "
          f"effective FLOPs per step / (D^2 cut) = {FISHER_SEARCH_FLOPS * dt / model:.2f} at the modelled rate")
