"""recovery.png: training loss per step and held-out loss, drawn with matplotlib (Agg, no display)."""
from __future__ import annotations



def plot_recovery(history: dict, title: str) -> bytes:
    """PNG bytes of ``history`` (``History.to_dict()``): loss per step, held-out loss as markers."""
    from andactl.plotting import png_bytes, subplots

    fig, ax = subplots(figsize=(6, 4), dpi=120)
    steps = list(range(1, len(history["loss"]) + 1))
    ax.plot(steps, history["loss"], lw=1, label="training loss (per step)")
    held = history["held_out"]
    ax.plot([h["step"] for h in held], [h["loss"] for h in held], marker="o", label="held-out loss")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return png_bytes(fig)
