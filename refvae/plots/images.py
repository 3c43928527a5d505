"""Images: grids of samples, originals beside reconstructions, weight vectors as images."""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .base import MAX_INCHES, finite_array, save_figure

__all__ = ["plot_image_grid", "plot_reconstructions", "plot_weights"]

_TILE_INCHES = 0.8          # width of one image tile in a grid


def _check_image_shape(image_shape):
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                                  for s in shape):
        raise ValueError(f"image_shape must be (height, width) with two positive integers, got {image_shape!r}")
    return int(shape[0]), int(shape[1])


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


def plot_image_grid(images, path, image_shape=(28, 28), ncols=10, title=None, colorbar=None) -> Path:
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
    colorbar : str, optional
        Draw the grey scale beside the grid, labelled with this text (e.g. "P(x = 1 | h)").

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
    fig = Figure(figsize=_grid_size(grid.shape, ncols, extra_w=0.9 if colorbar else 0.0,
                                    extra_h=0.45 if title else 0.1), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.05, pad=0.02).set_label(colorbar)
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
