"""Plots of training runs and of models, drawn on the host: NumPy arrays or plain Python data in, PNG files out.

``base.py`` (writing a figure, input checks), ``curves.py`` (training curves, with the panels each model declares),
``images.py`` and ``distributions.py``; a model's own plots live with the model (``refvae/vae/plots.py``).

Every function draws on its own :class:`matplotlib.figure.Figure` rendered by the non-interactive Agg
canvas: no pyplot, no global state, no display needed, nothing to close (the figure is never
registered with pyplot and is freed when the function returns). Each function validates its input
(a clear :class:`ValueError` for wrong shapes or non-finite values), creates the parent directories,
writes one PNG at ``DPI`` dots per inch and returns its path as a :class:`pathlib.Path`.
"""

from .base import DPI, MAX_INCHES, finite_array, integer_axis, save_figure
from .curves import plot_training_curves, register_panel, register_panels, register_series
from .distributions import plot_firing_rates, plot_histogram_pairs
from .images import plot_image_grid, plot_reconstructions, plot_weights

__all__ = ["DPI", "MAX_INCHES", "finite_array", "integer_axis", "plot_firing_rates", "plot_histogram_pairs", "plot_image_grid",
           "plot_reconstructions", "plot_training_curves", "plot_weights", "register_panel", "register_panels", "register_series",
           "save_figure"]
