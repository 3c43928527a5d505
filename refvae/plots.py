"""Plots of training runs and of models, drawn on the host: NumPy arrays or plain Python data in, PNG files out.

Every function draws on its own :class:`matplotlib.figure.Figure` rendered by the non-interactive Agg
canvas: no pyplot, no global state, no display needed, nothing to close (the figure is never
registered with pyplot and is freed when the function returns). Each function validates its input
(a clear :class:`ValueError` for wrong shapes or non-finite values), creates the parent directories,
writes one PNG at ``DPI`` dots per inch and returns its path as a :class:`pathlib.Path`.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["DPI", "MAX_INCHES", "finite_array", "integer_axis", "plot_firing_rates", "plot_histogram_pairs", "plot_image_grid",
           "plot_reconstructions", "plot_training_curves", "plot_weights", "register_panel", "register_series",
           "save_figure"]

DPI = 120
MAX_INCHES = 16.0          # no figure side grows beyond this; image grids shrink their tiles instead
_TILE_INCHES = 0.8          # width of one image tile in a grid


# ------------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------------
def save_figure(fig: Figure, path) -> Path:
    """Render ``fig`` with the Agg canvas into the PNG file ``path``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure made with ``Figure(...)`` (not pyplot).
    path : str or os.PathLike
        Destination; must end in ``.png``. Missing parent directories are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG files: the path must end in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _check_image_shape(image_shape):
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                                  for s in shape):
        raise ValueError(f"image_shape must be (height, width) with two positive integers, got {image_shape!r}")
    return int(shape[0]), int(shape[1])


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


def _as_images(images, image_shape, name="images"):
    """(n, h*w) float array of images, checked against ``image_shape``; a single 1-D image is promoted."""
    h, w = image_shape
    try:
        arr = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array: {err}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    size = h * w
    if arr.ndim != 2 or arr.shape[1] != size:
        per = f"{arr.shape[1]} values per image" if arr.ndim == 2 else f"{arr.ndim}-D input"
        raise ValueError(f"{name} must have shape (n, {size}) for image_shape=({h}, {w}), i.e. {h}*{w} = {size} "
                         f"values per image; got {arr.shape} ({per}): pass the image_shape of the data")
    return finite_array(arr, name)


def _tile(images, image_shape, ncols, pad=1, fill=1.0):
    """Images (n, h*w) laid out row by row on a grid of ``ncols`` columns, ``pad`` pixels of ``fill`` apart.

    Returns the grid, shape (nrows*(h+pad)-pad, ncols*(w+pad)-pad); unused cells hold ``fill``.
    """
    n = images.shape[0]
    h, w = image_shape
    nrows = max(1, -(-n // ncols))
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, ncols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images[i].reshape(h, w)
    return grid


def _grid_size(grid_shape, ncols, extra_w=0.0, extra_h=0.0, min_w=3.0, min_h=1.5):
    """Figure size (inches) for a tiled image of ``grid_shape`` pixels with ``ncols`` tiles per row.

    Tiles are about ``_TILE_INCHES`` wide, the aspect ratio of the pixels is kept, and the whole is scaled
    down so that no side exceeds ``MAX_INCHES``.
    """
    gh, gw = grid_shape
    width = ncols * _TILE_INCHES
    height = width * gh / gw
    # extreme aspect ratios (e.g. 1-pixel-tall images): keep the image readable in the other direction
    height = min(height, MAX_INCHES)
    shrink = min(1.0, MAX_INCHES / max(width, height))
    return max(min_w, width * shrink + extra_w), max(min_h, height * shrink + extra_h)


def integer_axis(ax, axis="x"):
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


# ------------------------------------------------------------------------------------------------------
# Training curves
# ------------------------------------------------------------------------------------------------------
_CORE_SERIES = ("epoch", "seconds", "train_loss", "val_loss")

#: Known per-epoch series: key -> (panel, legend label). Models add theirs with :func:`register_series`; a
#: series nobody registered goes in the "other" panel.
_KNOWN_SERIES: dict = {}
#: Panel name -> (panel title, y-axis label, right-hand axis (series key, axis label) or None), in the order
#: registered; "other" is always drawn last.
_PANELS: dict = {}
_OTHER_PANEL = ("Other recorded series", "value (as recorded)", None)


def register_panel(name: str, title: str, ylabel: str, right_axis=None) -> None:
    """A panel of :func:`plot_training_curves` for a group of per-epoch series of one quantity (one unit).

    ``right_axis``: ``(series key, axis label)`` of one series drawn on a right-hand axis of its own (a count
    beside the panel's quantity, e.g. the VAE's active units beside its mismatch KL). Registering the same
    panel again with the same definition is allowed (two models may record the same series)."""
    spec = (title, ylabel, right_axis)
    if name == "other" or _PANELS.get(name, spec) != spec:
        raise ValueError(f"panel {name!r} is already registered as {_PANELS.get(name, _OTHER_PANEL)}")
    _PANELS[name] = spec


def register_series(key: str, panel: str, label: str) -> None:
    """Draw the per-epoch history series ``key`` in ``panel`` (registered first) with legend ``label``."""
    if panel not in _PANELS:
        raise ValueError(f"unknown panel {panel!r}: register it with register_panel first")
    if _KNOWN_SERIES.get(key, (panel, label)) != (panel, label):
        raise ValueError(f"series {key!r} is already registered as {_KNOWN_SERIES[key]}")
    _KNOWN_SERIES[key] = (panel, label)


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _series(values, name, n):
    """A per-epoch series as a float array of length ``n``, None entries as NaN (ValueError otherwise)."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"history[{name!r}] must be a list with one entry per epoch, got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"history[{name!r}] has {len(values)} entries but history['epoch'] has {n}")
    if not all(v is None or _is_number(v) for v in values):
        raise ValueError(f"history[{name!r}] must hold numbers (or None for a missing value), got {values!r}")
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _extra_series(history, n):
    """The per-epoch numeric series of ``history`` besides epoch/seconds/train_loss/val_loss.

    A series qualifies if it is a list, tuple or 1-D array of length ``n`` whose entries are numbers or None,
    with at least one finite number. Returns ``{key: float array (n,)}`` in the history's order.
    """
    out = {}
    for key, values in history.items():
        if key in _CORE_SERIES:
            continue
        if isinstance(values, np.ndarray):
            if values.ndim != 1:
                continue
            values = values.tolist()
        if not isinstance(values, (list, tuple)) or len(values) != n:
            continue
        if not all(v is None or _is_number(v) for v in values):
            continue
        arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        if np.any(np.isfinite(arr)):
            out[str(key)] = arr
    return out


def _plot_present(ax, x, y, *args, **kwargs):
    """Plot only the finite points of y against x, joined (so missing epochs do not break the line)."""
    keep = np.isfinite(y)
    return ax.plot(x[keep], y[keep], *args, **kwargs)


def plot_training_curves(history: dict, path, title=None, ylabel=None) -> Path:
    """Loss per epoch, training and validation, with further panels for the other recorded series.

    Parameters
    ----------
    history : dict
        As returned by :func:`refvae.fit` (or read back from ``metrics.json``):

        - ``"epoch"``: list of n ints;
        - ``"train_loss"``: list of n floats, the mean loss over the epoch (negative ELBO, nats per example);
        - ``"val_loss"`` (optional): list of n floats or None (None: not measured that epoch; skipped);
        - ``"seconds"`` (optional): list of n floats, wall time per epoch (shown in the legend title);
        - any other key holding n numbers (or None) is drawn in a further panel, grouped by the panel its
          model registered it in (:func:`register_series`; e.g. a VAE's loss terms ``train_rec``/``train_kl``,
          its prior mismatch with ``active_units`` on a right-hand axis, an RBM's hidden firing rates);
          anything unregistered in an "other" panel. Keys whose values are not n numbers are ignored.

        ``history`` is not modified.
    path : str or os.PathLike
        PNG file to write.
    title : str, optional
        Title of the top panel (default "Training curves").
    ylabel : str, optional
        Label of the loss axis (default "loss (nats per example)").

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If ``history`` is not a mapping, lacks ``epoch`` or ``train_loss``, has no epochs, or one of the
        core series has the wrong length or non-numeric entries.
    """
    if not hasattr(history, "keys") or not hasattr(history, "get"):
        raise ValueError(f"history must be a dict of per-epoch lists, got {type(history).__name__}")
    missing = [k for k in ("epoch", "train_loss") if k not in history]
    if missing:
        raise ValueError(f"history lacks {missing}; it has {sorted(map(str, history))}")
    epoch_values = history["epoch"]
    if isinstance(epoch_values, np.ndarray):
        epoch_values = epoch_values.tolist()
    if not isinstance(epoch_values, (list, tuple)) or len(epoch_values) == 0:
        raise ValueError("history['epoch'] must be a non-empty list of epoch numbers")
    n = len(epoch_values)
    epochs = _series(epoch_values, "epoch", n)
    if not np.all(np.isfinite(epochs)):
        raise ValueError("history['epoch'] must not hold None or non-finite values")
    train = _series(history["train_loss"], "train_loss", n)
    val = _series(history["val_loss"], "val_loss", n) if history.get("val_loss") is not None else None
    seconds = None
    if history.get("seconds") is not None:
        try:
            seconds = _series(history["seconds"], "seconds", n)
        except ValueError:
            seconds = None                                    # a cosmetic extra: never fatal

    groups = {name: {} for name in [*_PANELS, "other"]}
    for key, values in _extra_series(history, n).items():
        panel = _KNOWN_SERIES.get(key, ("other", None))[0]
        groups[panel][key] = values
    panels = [(name, series) for name, series in groups.items() if series]

    fig = Figure(figsize=(8.0, 3.8 + 2.8 * len(panels)), layout="constrained")
    axes = fig.subplots(1 + len(panels), 1, sharex=True, squeeze=False)[:, 0]

    ax = axes[0]
    last = train[np.isfinite(train)]
    train_label = "training (mean over the epoch)" + (f", last {last[-1]:.4g}" if last.size else "")
    _plot_present(ax, epochs, train, "o-", ms=3.5, color="tab:blue", label=train_label)
    if val is not None and np.any(np.isfinite(val)):
        best = int(np.nanargmin(val))
        _plot_present(ax, epochs, val, "s-", ms=3.5, color="tab:orange",
                      label=f"validation, best {val[best]:.4g} at epoch {epochs[best]:g}")
        ax.plot([epochs[best]], [val[best]], "o", ms=9, mfc="none", mec="tab:orange", mew=1.5)
    legend_title = None
    if seconds is not None and np.any(np.isfinite(seconds)):
        legend_title = f"{np.nanmean(seconds):.3g} s per epoch, {np.nansum(seconds):.3g} s in all"
    ax.legend(title=legend_title, fontsize=9, title_fontsize=8, loc="best")
    ax.set_ylabel(ylabel or "loss (nats per example)")
    ax.set_title(title or "Training curves")
    ax.grid(alpha=0.3)

    for ax, (name, series) in zip(axes[1:], panels):
        panel_title, panel_ylabel, right_axis = _PANELS.get(name, _OTHER_PANEL)
        right = series.pop(right_axis[0], None) if right_axis else None
        for i, (key, values) in enumerate(series.items()):
            label = _KNOWN_SERIES.get(key, (None, key.replace("_", " ")))[1]
            _plot_present(ax, epochs, values, "o-", ms=3, color=colormaps["tab10"](i % 10), label=label)
        handles, labels = ax.get_legend_handles_labels()
        if right is not None:
            twin = ax.twinx()
            (h,) = _plot_present(twin, epochs, right, ":", marker="D", ms=3, color="k",
                                 label=_KNOWN_SERIES[right_axis[0]][1])
            twin.set_ylabel(right_axis[1])
            top = np.nanmax(right)
            twin.set_ylim(0, 1.35 * top + 1)                     # headroom for the legend
            integer_axis(twin, "y")
            handles, labels = handles + [h], labels + [h.get_label()]
        if series:
            ax.set_ylabel(panel_ylabel)
        else:                                                    # only the right-axis series: the left axis is empty
            ax.set_yticks([])
        ax.legend(handles, labels, fontsize=8, loc="best")
        ax.set_title(panel_title, fontsize=10)
        ax.grid(alpha=0.3)

    axes[-1].set_xlabel("epoch")
    integer_axis(axes[-1], "x")
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------------------
def plot_image_grid(images, path, image_shape=(28, 28), ncols=10, title=None) -> Path:
    """Grey-scale images on a grid, without axes.

    Parameters
    ----------
    images : array_like, shape (n, prod(image_shape)) or (prod(image_shape),)
        Pixel intensities in [0, 1] (0 black, 1 white); values outside are clipped in the display.
    path : str or os.PathLike
        PNG file to write.
    image_shape : tuple of int, (height, width)
        Shape of one image.
    ncols : int
        Images per row (fewer if there are fewer images).
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If the rows of ``images`` do not hold prod(image_shape) values (the message gives both sizes), if
        there are no images or non-finite values, or if ``ncols`` is not a positive integer.
    """
    image_shape = _check_image_shape(image_shape)
    images = _as_images(images, image_shape)
    if not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = int(min(ncols, images.shape[0]))
    grid = _tile(images, image_shape, ncols)
    fig = Figure(figsize=_grid_size(grid.shape, ncols, extra_h=0.45 if title else 0.1), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=11)
    return save_figure(fig, path)


def plot_reconstructions(originals, reconstructions, path, image_shape=(28, 28), title=None) -> Path:
    """Originals above their reconstructions: ten per row, a labelled pair of rows per ten images.

    Parameters
    ----------
    originals, reconstructions : array_like, shape (n, prod(image_shape))
        Images in [0, 1]; row i of ``reconstructions`` is drawn under row i of ``originals``.
    path : str or os.PathLike
        PNG file to write.
    image_shape : tuple of int, (height, width)
        Shape of one image.
    title : str, optional
        Figure title (default "Originals and their reconstructions").

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If either array has the wrong width for ``image_shape`` or the two differ in shape.
    """
    image_shape = _check_image_shape(image_shape)
    originals = _as_images(originals, image_shape, "originals")
    reconstructions = _as_images(reconstructions, image_shape, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {originals.shape} and reconstructions {reconstructions.shape} differ in "
                         "shape: pass one reconstruction per original")
    h, w = image_shape
    n = originals.shape[0]
    ncols = min(10, n)
    pair_gap = max(2, h // 4)                       # a wider white band between pairs than within one
    strips, centres, labels, y = [], [], [], 0
    for start in range(0, n, ncols):
        stop = min(start + ncols, n)
        for which, part in (("original", originals[start:stop]), ("reconstruction", reconstructions[start:stop])):
            padded = np.ones((ncols, part.shape[1]))
            padded[:part.shape[0]] = part
            strip = _tile(padded, image_shape, ncols)
            if strips:
                gap = pair_gap if which == "original" else 1
                strips.append(np.ones((gap, strip.shape[1])))
                y += gap
            strips.append(strip)
            centres.append(y + (h - 1) / 2)
            labels.append(which if n <= ncols else f"{which}s {start + 1}–{stop}")
            y += h
    grid = np.vstack(strips)
    width, height = _grid_size(grid.shape, ncols, extra_w=1.4, extra_h=0.5)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(centres, labels, fontsize=9)
    ax.tick_params(axis="y", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title or "Originals and their reconstructions", fontsize=11)
    return save_figure(fig, path)


def plot_weights(W, path, image_shape=(28, 28), n=100, title=None) -> Path:
    """The first ``n`` columns of a weight matrix as images (e.g. RBM filters), each scaled symmetrically about 0.

    Each filter is divided by its own largest absolute weight and drawn with a diverging colour map
    (red positive, blue negative, white zero), so the patterns of weak and strong filters are equally visible.

    Parameters
    ----------
    W : array_like, shape (n_visible, n_hidden)
        Weights; column j, reshaped to ``image_shape``, is the filter of hidden unit j.
    path : str or os.PathLike
        PNG file to write.
    image_shape : tuple of int, (height, width)
        Shape of one filter image; prod(image_shape) must equal n_visible.
    n : int
        How many filters (columns) to show, at most n_hidden.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If W is not 2-D with prod(image_shape) rows, holds non-finite values, or ``n`` is not positive.
    """
    image_shape = _check_image_shape(image_shape)
    size = image_shape[0] * image_shape[1]
    W = finite_array(W, "W")
    if W.ndim != 2 or W.shape[0] != size:
        raise ValueError(f"W must have shape ({size}, n_hidden) for image_shape={image_shape} (one column per "
                         f"hidden unit, {size} rows); got {W.shape}")
    if not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    cols = W[:, :n].T                                                   # (k, n_visible)
    k = cols.shape[0]
    scale = np.abs(cols).max(axis=1, keepdims=True)
    tiles = 0.5 + 0.5 * cols / np.where(scale > 0, scale, 1.0)          # each filter in [0, 1], 0.5 = zero
    ncols = min(10, k)
    grid = _tile(tiles, image_shape, ncols, fill=0.5)
    width, height = _grid_size(grid.shape, ncols, extra_w=1.2, extra_h=0.5)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(grid, cmap="RdBu_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    cb = fig.colorbar(im, ax=ax, shrink=min(0.8, 3.0 / height), ticks=[0, 0.5, 1])
    cb.ax.set_yticklabels(["−max|w|", "0", "+max|w|"], fontsize=8)
    cb.set_label("weight / that filter's max |w|", fontsize=8)
    ax.set_title(title or f"First {k} of {W.shape[1]} filters, each scaled to its own largest |weight|",
                 fontsize=11)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------------
# Distributions
# ------------------------------------------------------------------------------------------------------
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
