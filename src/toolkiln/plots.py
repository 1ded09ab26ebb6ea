"""The one way plots are written (docs/architecture.md#conventions).

A library function ``plot_<what>(data, path) -> Path`` builds its figure with :func:`subplots` and ends with
:func:`save`; stages call it with the output path and never touch matplotlib. The backend is the headless
``Agg`` (stages run without a display), a PNG is written atomically (an interrupted stage leaves the previous
plot or none), and the figure is closed so long runs do not accumulate them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from toolkiln.io import atomic_write  # noqa: E402

DPI = 110


def subplots(*args: Any, **kwargs: Any):
    """``matplotlib.pyplot.subplots`` on the headless backend: ``fig, axes``."""
    return plt.subplots(*args, **kwargs)


def save(fig, path: str | Path, *, dpi: int = DPI, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically and close it."""
    try:
        if tight:
            fig.tight_layout()
        atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format="png"))
    finally:
        plt.close(fig)
    return Path(path)


def save_image(image, path: str | Path) -> Path:
    """Write an image array (H x W [x 3]) as a PNG at ``path`` atomically."""
    return atomic_write(path, lambda p: plt.imsave(p, image, format="png"))


def message(text: str, path: str | Path) -> Path:
    """A small PNG that says why a plot is empty (the DVC output still exists)."""
    fig, ax = subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return save(fig, path, tight=False)
