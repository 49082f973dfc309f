"""andactl with the pre-run FLOP probe of stops 29-37 put back (PROBE=1), to check the root-cause fix (scratch)."""
import os, torch
if os.environ.get("PROBE") == "1":
    import andactl.dry_run as dr
    dr.cpu_flops(torch.bfloat16)
from andactl.cli.main import cli
cli()
