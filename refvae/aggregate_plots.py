"""Plots of the aggregate posterior against the prior (host-side: NumPy and matplotlib).

Every function takes host arrays or a :class:`refvae.PriorMismatch` report, writes a PNG with the
non-interactive Agg canvas (no global pyplot state), and returns the path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["plot_aggregate_histograms", "plot_aggregate_vs_prior", "plot_correlation", "plot_series"]

def plot_aggregate_vs_prior(report, path, title=None) -> Path:
    """Per-dimension aggregate mean and variance (with the two parts of the variance) against the prior's 0 and 1."""
    z = len(report.mean)
    dims = np.arange(z)
    fig = Figure(figsize=(max(6.0, 0.35 * z + 3), 6.0), layout="constrained")
    ax_m, ax_v = fig.subplots(2, 1, sharex=True)
    ax_m.bar(dims, report.mean, color=np.where(report.active, "tab:blue", "tab:gray"))
    ax_m.axhline(0.0, color="k", lw=1, ls="--", label="prior mean 0")
    ax_m.set_ylabel("aggregate mean")
    ax_m.legend(loc="best", fontsize=8)
    ax_v.bar(dims, report.posterior_var, color="tab:orange", label="⟨σ²(x)⟩ (posterior variance)")
    ax_v.bar(dims, report.mean_spread, bottom=report.posterior_var, color="tab:blue", label="Var[μ(x)] (spread of means)")
    ax_v.axhline(1.0, color="k", lw=1, ls="--", label="prior variance 1")
    ax_v.set_ylabel("aggregate variance")
    ax_v.set_xlabel("latent dimension (grey mean bars: inactive units)")
    ax_v.set_xticks(dims)
    ax_v.legend(loc="best", fontsize=8)
    fig.suptitle(title or f"Aggregate posterior vs N(0, I): KL {report.kl_diag:.3f} nats (diagonal), "
                          f"{report.kl_full:.3f} (full); {report.n_active}/{z} active")
    return save_figure(fig, path)


def plot_aggregate_histograms(samples, dims, path, kls=None, title=None) -> Path:
    """Histograms of samples of the aggregate posterior in the given dimensions, each against the N(0, 1) density.

    samples : (n, z_dim) draws z ~ q(z|x), x over the data;  dims : the dimensions to show.
    """
    dims = list(dims)
    ncols = min(4, len(dims))
    nrows = math.ceil(len(dims) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.8 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    grid = np.linspace(-4, 4, 200)
    for ax, d in zip(axes, dims):
        lo, hi = min(-4.0, samples[:, d].min()), max(4.0, samples[:, d].max())
        ax.hist(samples[:, d], bins=60, range=(lo, hi), density=True, color="tab:blue", alpha=0.6,
                label="aggregate q(z)")
        ax.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), "k--", lw=1.2, label="prior N(0, 1)")
        ax.set_title(f"z[{d}]" + (f"  KL {kls[d]:.3f}" if kls is not None else ""), fontsize=9)
        ax.set_xlabel("z")
    for ax in axes[len(dims):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "Most mismatched dimensions: aggregate posterior against the prior")
    return save_figure(fig, path)


def plot_correlation(corr, path, title=None) -> Path:
    """The aggregate posterior's correlation matrix (z_dim, z_dim), diverging colours in [-1, 1]."""
    z = corr.shape[0]
    fig = Figure(figsize=(5.5, 4.8), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(im, ax=ax, label="correlation")
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("latent dimension")
    if z <= 32:
        ax.set_xticks(range(z))
        ax.set_yticks(range(z))
        ax.tick_params(labelsize=7)
    ax.set_title(title or "Correlations of the aggregate posterior (a diagonal prior has none)")
    return save_figure(fig, path)


def plot_series(series: dict, path, xlabel="epoch", ylabel="", title=None, spread: dict | None = None,
                logy=False) -> Path:
    """Lines ``{label: y values}`` against 1, 2, ... with optional ``spread[label]`` bands (e.g. ± one s.d.)."""
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.subplots()
    for label, ys in series.items():
        ys = np.asarray(ys, dtype=float)
        xs = np.arange(1, len(ys) + 1)
        (line,) = ax.plot(xs, ys, marker="o", ms=3, label=label)
        if spread and label in spread:
            sd = np.asarray(spread[label], dtype=float)
            ax.fill_between(xs, ys - sd, ys + sd, color=line.get_color(), alpha=0.2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
