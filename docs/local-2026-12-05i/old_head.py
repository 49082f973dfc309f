"""The recovery loss as it was before stop 38 (head logits and loss under the ambient bf16 autocast),
for a side-by-side run: `python old_head.py recover ...` = `andactl recover ...` with that loss."""
import torch

import andactl.passes.recover_loss as rl


def head_logits(h, w, b):
    out = h.float() @ w.float().t()
    return out + b.float() if b is not None else out


rl.head_logits = head_logits
rl._ChunkedHeadLoss.forward = staticmethod(lambda ctx, *args: rl._ChunkedHeadLoss._forward(ctx, *args))

if __name__ == "__main__":
    from andactl.cli.main import cli

    cli()
