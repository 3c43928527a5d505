"""What every plot shares: writing a figure, checking input arrays, sizing grids, integer axes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..checkpoint import atomic_file

__all__ = ["DPI", "LABEL_WIDTH", "MAX_INCHES", "finite_array", "integer_axis", "save_figure", "set_ylabel"]

DPI = 120
MAX_INCHES = 16.0          # no figure side grows beyond this; image grids shrink their tiles instead
LABEL_WIDTH = 40           # characters per line of an axis label: a 2.8-inch panel holds about 45 at 10 pt


def save_figure(fig: Figure, path) -> Path:
    """Render ``fig`` with the Agg canvas into the PNG file ``path``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure made with ``Figure(...)`` (not pyplot).
    path : str or os.PathLike
        Destination; must end in ``.png``. Missing parent directories are created. Written atomically
        (``refvae.checkpoint.atomic_file``): a failure leaves the previous file, or none.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG files: the path must end in .png, got {str(path)!r}")
    FigureCanvasAgg(fig)
    with atomic_file(path) as f:                    # complete or not there: never a truncated PNG
        fig.savefig(f, dpi=DPI, format="png")
    return path


def finite_array(values, name, ndim=None):
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array: {err}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): nothing to plot")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or inf)")
    return arr


def integer_axis(ax, axis="x"):
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def set_ylabel(ax, text: str, width: int = LABEL_WIDTH):
    """``ax.set_ylabel(text)`` wrapped into lines of at most ``width`` characters, so that a long label stays
    beside its own panel instead of running into the next one."""
    return ax.set_ylabel(textwrap.fill(text, width))
