"""Distributions: two samples' histograms on common bins, and binary units' firing probabilities (the aggregate
recognition distribution against the prior or the model's marginal, layer by layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .base import finite_array, integer_axis, save_figure

__all__ = ["plot_firing_rates", "plot_histogram_pairs"]


def plot_histogram_pairs(values_a, values_b, path, labels=("a", "b"), title=None, xlabel=None) -> Path:
    """Overlaid step histograms of two 1-D samples on common bins.

    E.g. the hidden units' firing rates under the aggregate posterior against the model's marginal.
    With equal sample sizes the y axis counts values per bin; with unequal sizes it shows the fraction of
    each sample per bin, so the two are comparable. Dotted vertical lines mark the two means.

    Parameters
    ----------
    values_a, values_b : array_like, shape (n_a,) and (n_b,)
        The two samples (flattened if not 1-D); finite.
    path : str or os.PathLike
        PNG file to write.
    labels : (str, str)
        Legend names of the two samples.
    title : str, optional
        Axes title.
    xlabel : str, optional
        Label of the x axis (default "value").

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If either sample is empty or non-finite, or ``labels`` is not two names.
    """
    a = finite_array(values_a, "values_a").ravel()
    b = finite_array(values_b, "values_b").ravel()
    if isinstance(labels, str) or len(labels) != 2:
        raise ValueError(f"labels must be two names, one per sample; got {labels!r}")
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 41)
    same = a.size == b.size
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for values, label, colour, style in ((a, labels[0], "tab:blue", "-"), (b, labels[1], "tab:orange", "--")):
        weights = None if same else np.full(values.size, 1.0 / values.size)
        ax.hist(values, bins=bins, weights=weights, histtype="step", lw=1.8, ls=style, color=colour,
                label=f"{label} (n = {values.size}, mean {values.mean():.3g})")
        ax.axvline(values.mean(), color=colour, ls=":", lw=1.2)
    ax.set_xlabel(xlabel or "value")
    ax.set_ylabel("count per bin" if same else "fraction of the sample per bin")
    if same:
        integer_axis(ax, "y")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.25)                        # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper center", ncols=1)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_firing_rates(layers, path, labels=("aggregate recognition ⟨Q(h=1|·)⟩ over the data",
                                             "generative model P(h=1)"), title=None) -> Path:
    """Per hidden layer, each unit's firing probability under the recognition model averaged over the data
    (x axis) against the generative model's (y axis): on the diagonal the prior matches the aggregate posterior.

    Parameters
    ----------
    layers : sequence of (array_like (n_l,), array_like (n_l,))
        One pair per hidden layer, bottom to top: (aggregate recognition rates, generative rates), in [0, 1].
    path : str or os.PathLike
        PNG file to write.
    labels : (str, str)
        Axis labels.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    pairs = []
    for i, pair in enumerate(layers):
        if len(pair) != 2:
            raise ValueError(f"layers[{i}] must be a pair (aggregate rates, generative rates)")
        a = finite_array(pair[0], f"layers[{i}][0]", ndim=1)
        g = finite_array(pair[1], f"layers[{i}][1]", ndim=1)
        if a.shape != g.shape:
            raise ValueError(f"layers[{i}]: the two rate vectors differ in length ({a.size} and {g.size})")
        pairs.append((a, g))
    if not pairs:
        raise ValueError("layers is empty: pass one (aggregate, generative) pair per hidden layer")
    fig = Figure(figsize=(3.6 * len(pairs) + 0.6, 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(pairs), squeeze=False)[0])
    for l, (ax, (a, g)) in enumerate(zip(axes, pairs), start=1):
        ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="prior = aggregate posterior")
        ax.scatter(a, g, s=22, color="tab:blue" if l < len(pairs) else "tab:red", alpha=0.8, zorder=3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        gap = float(np.max(np.abs(a - g)))
        ax.set_title(f"layer {l}{' (top)' if l == len(pairs) else ''}: {a.size} units, max gap {gap:.3f}",
                     fontsize=9)
        ax.set_xlabel(labels[0], fontsize=8)
        if l == 1:
            ax.set_ylabel(labels[1], fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title or "Firing probability of each hidden unit: generative model against recognition")
    return save_figure(fig, path)
