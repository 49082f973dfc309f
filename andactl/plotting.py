"""Headless matplotlib figures rendered to PNG bytes (the artifact's and the sweep's plots)."""
from __future__ import annotations

import io


def subplots(*args, **kwargs):
    """``plt.subplots`` on the Agg backend (no display needed); returns (fig, axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def png_bytes(fig, **savefig_kwargs) -> bytes:
    """The figure as PNG bytes after tight_layout; the figure is closed (no leak across plots)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", **savefig_kwargs)
    plt.close(fig)
    return buf.getvalue()
