"""Plots of training runs and models (host-side: NumPy arrays in, PNG files out).

Every function draws on a non-interactive Agg canvas (``matplotlib.figure.Figure``; no pyplot global
state, works without a display), creates the parent directory, writes the PNG and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_histogram_pairs", "plot_image_grid", "plot_latent_scatter", "plot_posterior_stats",
           "plot_reconstructions", "plot_training_curves", "plot_weights", "save_figure"]

DPI = 120
_CORE_SERIES = {"epoch", "seconds", "train_loss", "val_loss"}


def save_figure(fig: Figure, path) -> Path:
    """Render ``fig`` with the Agg canvas into the PNG ``path`` (parent directories created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def _as_images(images, image_shape, name="images"):
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 1:
        images = images[None, :]
    size = int(np.prod(image_shape))
    if images.ndim != 2 or images.shape[1] != size:
        raise ValueError(f"{name} must have shape (n, {size}) for image_shape={tuple(image_shape)}; "
                         f"got {images.shape}: pass image_shape matching the data")
    return images


def _tile(images, image_shape, ncols, pad=1, fill=1.0):
    """One array holding the images on a grid with ``pad`` pixels of ``fill`` between them."""
    n = images.shape[0]
    h, w = image_shape
    nrows = max(1, -(-n // ncols))
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill)
    for i in range(n):
        r, c = divmod(i, ncols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images[i].reshape(h, w)
    return grid


def _panels(history, n):
    """Group the extra per-epoch series of a history into panels of like quantities."""
    extra = {k: v for k, v in history.items()
             if k not in _CORE_SERIES and isinstance(v, (list, tuple)) and len(v) == n
             and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)}
    groups = {"terms": {}, "mismatch": {}, "other": {}}
    for k, v in extra.items():
        if k.startswith("train_"):
            groups["terms"][k] = v
        elif k.startswith("mismatch_") or k == "active_units":
            groups["mismatch"][k] = v
        else:
            groups["other"][k] = v
    return [(name, series) for name, series in groups.items() if series]


_LABELS = {"train_rec": "reconstruction −log p(x|z)", "train_kl": "KL(q(z|x) ‖ p(z))",
           "mismatch_kl": "KL(aggregate ‖ prior), diagonal", "mismatch_kl_full": "KL(aggregate ‖ prior), full"}


def plot_training_curves(history: dict, path, title=None) -> Path:
    """Training and validation loss per epoch (nats per example), with further panels for the other
    per-epoch series of ``history``: the ELBO's terms (``train_*``), the aggregate posterior's mismatch
    with the prior (``mismatch_*``, with ``active_units`` on a second axis), and anything else.

    ``history`` as returned by :func:`refvae.fit`: ``epoch``, ``train_loss``, optional ``val_loss``
    (None entries are skipped).
    """
    epochs = np.asarray(history["epoch"])
    panels = _panels(history, len(epochs))
    fig = Figure(figsize=(7.5, 3.2 + 2.6 * len(panels)), layout="constrained")
    axes = fig.subplots(1 + len(panels), 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(epochs, history["train_loss"], "o-", ms=3, label="training (mean over the epoch)")
    val = history.get("val_loss")
    if val is not None and any(v is not None for v in val):
        e_val = [e for e, v in zip(epochs, val) if v is not None]
        ax.plot(e_val, [v for v in val if v is not None], "s-", ms=3, label="validation (after the epoch)")
    ax.set_ylabel("loss (nats per example)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "Training curves")
    for ax, (name, series) in zip(axes[1:], panels):
        units = series.pop("active_units", None)
        for k, v in series.items():
            ax.plot(epochs, v, "o-", ms=3, label=_LABELS.get(k, k))
        ax.set_ylabel({"terms": "nats per example", "mismatch": "nats"}.get(name, "value"))
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if units is not None:
            twin = ax.twinx()
            (h,) = twin.plot(epochs, units, "k:", marker=".", label="active units (right axis)")
            twin.set_ylabel("active units")
            twin.set_ylim(0, 1.35 * max(units) + 1)  # headroom for the legend
            handles, labels = handles + [h], labels + [h.get_label()]
        ax.legend(handles, labels, fontsize=8, loc="best")
    axes[-1].set_xlabel("epoch")
    return save_figure(fig, path)


def plot_image_grid(images, path, image_shape=(28, 28), ncols=10, title=None) -> Path:
    """Grey-scale images (n, prod(image_shape)) in [0, 1] on a grid of ``ncols`` columns."""
    images = _as_images(images, image_shape)
    ncols = max(1, min(ncols, images.shape[0]))
    grid = _tile(images, image_shape, ncols)
    h, w = grid.shape
    fig = Figure(figsize=(max(3.0, w / 28 * 0.75), max(2.0, h / 28 * 0.75 + (0.4 if title else 0))),
                 layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_reconstructions(originals, reconstructions, path, image_shape=(28, 28), title=None) -> Path:
    """Originals above their reconstructions, ten per row pair."""
    originals = _as_images(originals, image_shape, "originals")
    reconstructions = _as_images(reconstructions, image_shape, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in shape")
    n = originals.shape[0]
    ncols = min(10, n)
    rows = []
    for start in range(0, n, ncols):
        block = slice(start, min(start + ncols, n))
        for part in (originals[block], reconstructions[block]):
            padded = np.ones((ncols, part.shape[1]))
            padded[:part.shape[0]] = part
            rows.append(_tile(padded, image_shape, ncols))
    h, w = image_shape
    gaps = [np.ones((3 if i % 2 else 1, rows[0].shape[1])) for i in range(len(rows))]
    grid = np.vstack([part for r, g in zip(rows, gaps) for part in (r, g)][:-1])   # no gap after the last row
    fig = Figure(figsize=(max(4.0, ncols * 0.8 + 1.2), len(rows) * 0.85 + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ticks, labels, y = [], [], 0
    for i, r in enumerate(rows):
        ticks.append(y + h / 2)
        labels.append("original" if i % 2 == 0 else "reconstruction")
        y += r.shape[0] + (3 if i % 2 else 1)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_title(title or "Originals and reconstructions", fontsize=10)
    return save_figure(fig, path)


def plot_latent_scatter(z, labels, path, title=None) -> Path:
    """Latent codes z (n, d) coloured by integer labels (or one colour if None).

    d = 2: the two dimensions; d > 2: the first two principal components (via SVD of the centred codes);
    d = 1: the code against a small vertical jitter.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"z must have shape (n, d) with n >= 1; got {z.shape}")
    d = z.shape[1]
    if d == 1:
        xy = np.column_stack([z[:, 0], np.random.default_rng(0).uniform(-0.5, 0.5, z.shape[0])])
        xlabel, ylabel = "z[0]", "jitter (no meaning)"
    elif d == 2:
        xy, (xlabel, ylabel) = z, ("z[0]", "z[1]")
    else:
        centred = z - z.mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        share = s[:2] ** 2 / np.sum(s**2)
        xlabel, ylabel = (f"principal component 1 ({share[0]:.0%} of variance)",
                          f"principal component 2 ({share[1]:.0%} of variance)")
    fig = Figure(figsize=(6.8, 5.6), layout="constrained")
    ax = fig.subplots()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.6)
    else:
        labels = np.asarray(labels)
        classes = np.unique(labels)
        cmap = matplotlib.colormaps["tab10"]
        for i, c in enumerate(classes):
            sel = labels == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=5, alpha=0.7, color=cmap(i % 10), label=str(c))
        ax.legend(title="label", markerscale=3, fontsize=8, loc="best")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Latent codes")
    return save_figure(fig, path)


def plot_posterior_stats(mu, logvar, path, title=None) -> Path:
    """Per latent dimension, from an encoder's (mu, logvar), each (n, z_dim), over a data set:
    the mean of mu, the activity Var[mu] (log scale, 0.01 = the active-unit threshold of Burda et al.
    2015), the mean posterior variance <exp(logvar)>, and the aggregate variance <exp(logvar)> + Var[mu]
    against the prior's 1."""
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    if mu.shape != logvar.shape or mu.ndim != 2:
        raise ValueError(f"mu and logvar must both have shape (n, z_dim); got {mu.shape} and {logvar.shape}")
    dims = np.arange(mu.shape[1])
    activity = mu.var(axis=0)
    post_var = np.exp(logvar).mean(axis=0)
    fig = Figure(figsize=(max(7.0, 0.3 * len(dims) + 4), 6.5), layout="constrained")
    (a1, a2), (a3, a4) = fig.subplots(2, 2, sharex=True)
    a1.bar(dims, mu.mean(axis=0))
    a1.axhline(0, color="k", ls="--", lw=1)
    a1.set_title("mean of μ(x)", fontsize=10)
    a2.bar(dims, np.maximum(activity, 1e-12), color=np.where(activity > 0.01, "tab:blue", "tab:gray"))
    a2.set_yscale("log")
    a2.axhline(0.01, color="r", ls="--", lw=1, label="active above 0.01")
    a2.legend(fontsize=8)
    a2.set_title("activity Var[μ(x)]", fontsize=10)
    a3.bar(dims, post_var, color="tab:orange")
    a3.axhline(1, color="k", ls="--", lw=1, label="prior variance 1")
    a3.legend(fontsize=8)
    a3.set_title("mean posterior variance ⟨σ²(x)⟩", fontsize=10)
    a4.bar(dims, post_var + activity, color="tab:green")
    a4.axhline(1, color="k", ls="--", lw=1, label="prior variance 1")
    a4.legend(fontsize=8)
    a4.set_title("aggregate variance ⟨σ²⟩ + Var[μ]", fontsize=10)
    for a in (a3, a4):
        a.set_xlabel("latent dimension")
    fig.suptitle(title or "Posterior statistics per latent dimension")
    return save_figure(fig, path)


def plot_weights(W, path, image_shape=(28, 28), n=100, title=None) -> Path:
    """The first ``n`` columns of W (n_visible, n_hidden) as images, each scaled symmetrically around 0."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != int(np.prod(image_shape)):
        raise ValueError(f"W must have shape ({int(np.prod(image_shape))}, n_hidden) for image_shape="
                         f"{tuple(image_shape)}; got {W.shape}")
    cols = W[:, :n].T                                          # (k, n_visible)
    scale = np.maximum(np.abs(cols).max(axis=1, keepdims=True), 1e-12)
    tiles = 0.5 + 0.5 * cols / scale                           # each filter in [0, 1], 0.5 = zero weight
    ncols = min(10, tiles.shape[0])
    grid = _tile(tiles, image_shape, ncols, fill=0.5)
    fig = Figure(figsize=(ncols * 0.8 + 1.5, grid.shape[0] / image_shape[0] * 0.8 + 0.6), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(grid, cmap="RdBu_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    cb = fig.colorbar(im, ax=ax, shrink=0.6, ticks=[0, 0.5, 1])
    cb.ax.set_yticklabels(["−max", "0", "+max"])
    ax.set_title(title or f"First {tiles.shape[0]} filters (each scaled to its largest |weight|)", fontsize=10)
    return save_figure(fig, path)


def plot_histogram_pairs(values_a, values_b, path, labels=("a", "b"), title=None, xlabel=None) -> Path:
    """Overlaid step histograms of two 1-D arrays on common bins."""
    a = np.asarray(values_a, dtype=np.float64).ravel()
    b = np.asarray(values_b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("plot_histogram_pairs needs two non-empty arrays")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.hist(a, bins=bins, histtype="step", lw=1.8, label=labels[0])
    ax.hist(b, bins=bins, histtype="step", lw=1.8, label=labels[1])
    ax.set_xlabel(xlabel or "value")
    ax.set_ylabel("count")
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
