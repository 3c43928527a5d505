"""The Gaussian VAE's plots: its latent space, per-dimension posterior statistics, and the aggregate posterior
against the prior (host-side: NumPy and matplotlib); and the VAE's per-epoch series for the training curves.

Every function takes host arrays or a :class:`refvae.PriorMismatch` report, writes a PNG with the
non-interactive Agg canvas (no global pyplot state), and returns the path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..plots import MAX_INCHES, finite_array, integer_axis, save_figure
from .aggregate import ACTIVE_THRESHOLD

__all__ = ["plot_aggregate_histograms", "plot_aggregate_vs_prior", "plot_correlation", "plot_latent_scatter",
           "plot_posterior_stats", "plot_series"]

#: The VAE's panels of ``refvae.plots.plot_training_curves`` (listed in ``refvae.app``): panel name ->
#: title, y label, {history key: legend label}, and an optional series on a right-hand axis.
CURVES = {
    "elbo": {"title": "Terms of the training loss", "ylabel": "nats per example",
             "series": {"train_rec": "reconstruction  −log p(x|z)", "train_kl": "KL(q(z|x) ‖ p(z))"}},
    "mismatch": {"title": "Aggregate posterior against the prior", "ylabel": "nats",
                 "right_axis": ("active_units", "active units (count)"),
                 "series": {"mismatch_kl": "KL(aggregate q(z) ‖ p(z)), diagonal Gaussian fit",
                            "mismatch_kl_full": "KL(aggregate q(z) ‖ p(z)), full-covariance fit",
                            "active_units": "active units (right axis)"}},
}


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


# ------------------------------------------------------------------------------------------------------
# Latent space
# ------------------------------------------------------------------------------------------------------
def _project_2d(z):
    """Two coordinates to plot for codes z (n, d), and their axis labels.

    d = 1: the code against a uniform jitter in [-1, 1) (fixed seed; the vertical position means nothing);
    d = 2: the two dimensions; d > 2: the projections on the first two principal components of the centred
    codes (right singular vectors of the SVD), labelled with the share of the variance each explains.
    """
    n, d = z.shape
    if d == 1:
        jitter = np.random.default_rng(0).uniform(-1.0, 1.0, n)
        return np.column_stack([z[:, 0], jitter]), "z[0]", "random jitter (no meaning)"
    if d == 2:
        return z, "z[0]", "z[1]"
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = np.sum(s**2)
    share = s[:2] ** 2 / total if total > 0 else np.zeros(2)
    xy = centred @ vt[:2].T
    return (xy, f"principal component 1 of {d} dims ({share[0]:.0%} of variance)",
            f"principal component 2 ({share[1]:.0%} of variance)")


def plot_latent_scatter(z, labels, path, title=None) -> Path:
    """Latent codes as points in the plane, coloured by class.

    Parameters
    ----------
    z : array_like, shape (n, d)
        Codes, e.g. posterior means. d = 2: plotted as they are. d > 2: projected on their first two
        principal components (SVD of the centred codes; the axis labels say so and give the share of the
        variance). d = 1: z[0] on the x axis against a random vertical jitter (labelled as meaningless), so
        that overlapping classes stay visible.
    labels : array_like of int, shape (n,), or None
        Class of each point. Up to 10 classes: the qualitative ``tab10`` colour map and a legend; more: a
        sequential colour map with a colour bar. None: one colour, no legend.
    path : str or os.PathLike
        PNG file to write.
    title : str, optional
        Axes title (default "Latent codes").

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If z is not a non-empty, finite (n, d) array with d >= 1, or labels are not n integers.
    """
    z = finite_array(z, "z")
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"z must have shape (n, d) with d >= 1, got {z.shape}")
    n = z.shape[0]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), one per row of z; got {labels.shape}")
        if labels.dtype.kind not in "iu":
            as_float = np.asarray(labels, dtype=np.float64) if labels.dtype.kind in "fb" else None
            if as_float is None or not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                raise ValueError(f"labels must be integers (class indices), got dtype {labels.dtype}")
            labels = as_float.astype(np.int64)
    xy, xlabel, ylabel = _project_2d(z)
    order = np.random.default_rng(0).permutation(n)                 # no class systematically drawn on top
    size = 14.0 if n <= 1000 else 6.0 if n <= 10000 else 2.0
    fig = Figure(figsize=(7.4, 6.0), layout="constrained")
    ax = fig.subplots()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, color="tab:blue", linewidths=0)
    else:
        classes, index = np.unique(labels, return_inverse=True)
        if len(classes) <= 10:
            cmap = colormaps["tab10"]
            colours = cmap(index % 10)
            ax.scatter(xy[order, 0], xy[order, 1], s=size, alpha=0.75, c=colours[order], linewidths=0)
            handles = [Line2D([], [], ls="", marker="o", ms=7, color=cmap(i), label=str(c))
                       for i, c in enumerate(classes)]
            ax.legend(handles=handles, title="label", fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      borderaxespad=0.0)
        else:
            sc = ax.scatter(xy[order, 0], xy[order, 1], s=size, alpha=0.75, c=labels[order], cmap="viridis",
                            linewidths=0)
            fig.colorbar(sc, ax=ax, label="label")
    if z.shape[1] == 1:
        ax.set_yticks([])
        ax.set_ylim(-1.6, 1.6)
    else:
        ax.set_aspect("equal", adjustable="datalim")               # distances in the plot are distances in z
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"Latent codes (n = {n})")
    return save_figure(fig, path)


def plot_posterior_stats(mu, logvar, path, title=None) -> Path:
    """Per-dimension statistics of a Gaussian encoder's posteriors over a data set.

    Four panels, latent dimension on the x axis:

    1. the mean over the data of mu;
    2. the activity Var over the data of mu (log scale) with the active-unit threshold
       ``ACTIVE_THRESHOLD`` = 0.01 of Burda et al. (2015) as a dashed line;
    3. the mean posterior variance <exp(logvar)>, against the prior's variance 1;
    4. the aggregate posterior's variance <exp(logvar)> + Var[mu] (law of total variance), against the
       prior's 1 (dashed line): a dimension that matches the prior sits on the line.

    Inactive dimensions (activity <= 0.01) are drawn grey in every panel.

    Parameters
    ----------
    mu, logvar : array_like, shape (n, z_dim)
        Posterior means and log-variances, one row per data point.
    path : str or os.PathLike
        PNG file to write.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If mu and logvar are not finite (n, z_dim) arrays of the same shape.
    """
    mu, logvar = finite_array(mu, "mu"), finite_array(logvar, "logvar")
    if mu.ndim != 2 or mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must both have shape (n, z_dim); got {mu.shape} and {logvar.shape}")
    z_dim = mu.shape[1]
    dims = np.arange(z_dim)
    activity = mu.var(axis=0)
    active = activity > ACTIVE_THRESHOLD
    post_var = np.exp(logvar).mean(axis=0)
    aggregate = post_var + activity
    colour = lambda c: np.where(active, c, "tab:gray")          # noqa: E731

    fig = Figure(figsize=(min(MAX_INCHES, max(9.0, 0.25 * z_dim + 5.0)), 7.0), layout="constrained")
    (a1, a2), (a3, a4) = fig.subplots(2, 2, sharex=True)

    a1.bar(dims, mu.mean(axis=0), color=colour("tab:blue"))
    a1.axhline(0.0, color="k", ls="--", lw=1, label="prior mean 0")
    a1.set_title("Mean of μ(x) over the data", fontsize=10)
    a1.set_ylabel("⟨μ⟩")

    floor = max(1e-12, 0.3 * min(np.min(activity[activity > 0], initial=np.inf), ACTIVE_THRESHOLD))
    a2.bar(dims, np.maximum(activity, floor), color=colour("tab:blue"))
    a2.set_yscale("log")
    a2.set_ylim(bottom=floor)
    a2.axhline(ACTIVE_THRESHOLD, color="tab:red", ls="--", lw=1.2,
               label=f"active-unit threshold {ACTIVE_THRESHOLD:g} (Burda et al. 2015)")
    a2.set_title(f"Activity Var[μ(x)]: {int(active.sum())} of {z_dim} units active", fontsize=10)
    a2.set_ylabel("Var[μ] (log scale)")

    a3.bar(dims, post_var, color=colour("tab:orange"))
    a3.axhline(1.0, color="k", ls="--", lw=1, label="prior variance 1")
    a3.set_title("Mean posterior variance ⟨σ²(x)⟩", fontsize=10)
    a3.set_ylabel("⟨exp(logvar)⟩")

    a4.bar(dims, aggregate, color=colour("tab:green"))
    a4.axhline(1.0, color="k", ls="--", lw=1, label="prior variance 1")
    a4.set_title("Aggregate posterior variance ⟨σ²⟩ + Var[μ]", fontsize=10)
    a4.set_ylabel("variance")

    # headroom above the bars for the legends
    lo, hi = a1.get_ylim()
    a1.set_ylim(lo, hi + 0.3 * (hi - lo))
    a2.set_ylim(top=max(activity.max(), ACTIVE_THRESHOLD) * 30)
    for a, values in ((a3, post_var), (a4, aggregate)):
        a.set_ylim(0, 1.3 * max(values.max(), 1.0))
    for a in (a1, a2, a3, a4):
        a.legend(fontsize=8, loc="upper right")
        a.grid(axis="y", alpha=0.3)
        a.set_xlim(-0.6, z_dim - 0.4)
    for a in (a3, a4):
        a.set_xlabel("latent dimension")
        if z_dim <= 32:
            a.set_xticks(dims)
            a.tick_params(axis="x", labelsize=8 if z_dim <= 20 else 6)
        else:
            integer_axis(a, "x")
    note = " (grey bars: inactive units)" if not active.all() else ""
    fig.suptitle((title or f"Posterior statistics per latent dimension, n = {mu.shape[0]}") + note)
    return save_figure(fig, path)
