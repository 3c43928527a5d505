"""Training curves: the loss per epoch, and each model's per-epoch series in panels by quantity (the panels each
model declares in its table entry in ``refvae.app``, installed by ``refvae.app.install``)."""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .base import integer_axis, save_figure, set_ylabel

__all__ = ["plot_training_curves", "register_panel", "register_panels", "register_series", "training_curves_figure"]

_CORE_SERIES = ("epoch", "seconds", "train_loss", "val_loss")

#: Known per-epoch series: key -> (panel, legend label), from :func:`register_panels`; a series nobody declared
#: goes in the "other" panel.
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


def register_panels(curves: dict) -> None:
    """Register a model's panels: ``{name: {"title", "ylabel", "series": {key: label}, "right_axis" (optional)}}``
    (each model's ``CURVES``, listed in ``refvae.app``)."""
    for name, spec in curves.items():
        register_panel(name, spec["title"], spec["ylabel"], spec.get("right_axis"))
        for key, label in spec["series"].items():
            register_series(key, name, label)


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
          model declares it in (:func:`register_panels`; e.g. a VAE's loss terms ``train_rec``/``train_kl``,
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
    return save_figure(training_curves_figure(history, title, ylabel), path)


def training_curves_figure(history: dict, title=None, ylabel=None) -> Figure:
    """The figure :func:`plot_training_curves` writes (same arguments, no file)."""
    epochs, train, val, seconds = _core_series(history)
    panels = _panels_of(history, len(epochs))
    fig = Figure(figsize=(8.0, 3.8 + 2.8 * len(panels)), layout="constrained")
    axes = fig.subplots(1 + len(panels), 1, sharex=True, squeeze=False)[:, 0]
    _draw_loss(axes[0], epochs, train, val, seconds, title, ylabel)
    for ax, (name, series) in zip(axes[1:], panels):
        _draw_panel(ax, epochs, name, series)
    axes[-1].set_xlabel("epoch")
    if np.ptp(epochs) < 2:                     # one or two epochs: ticks at them (no fractional epochs)
        axes[-1].set_xticks(epochs)
    else:
        integer_axis(axes[-1], "x")
    return fig


def _core_series(history):
    """(epochs, train, val or None, seconds or None) of a history, each a float array (n,); ValueError if malformed."""
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
    return epochs, train, val, seconds


def _panels_of(history, n):
    """[(panel name, {key: values})] for the panels that have series, in the registered order, "other" last."""
    groups = {name: {} for name in [*_PANELS, "other"]}
    for key, values in _extra_series(history, n).items():
        panel = _KNOWN_SERIES.get(key, ("other", None))[0]
        groups[panel][key] = values
    return [(name, series) for name, series in groups.items() if series]


def _draw_loss(ax, epochs, train, val, seconds, title, ylabel):
    """The top panel: training and validation loss, the best validation epoch ringed, the time in the legend."""
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
    set_ylabel(ax, ylabel or "loss (nats per example)")
    ax.set_title(title or "Training curves")
    ax.grid(alpha=0.3)


def _draw_panel(ax, epochs, name, series):
    """One panel of further series (one quantity), with its right-hand-axis series if it declares one."""
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
        set_ylabel(twin, right_axis[1])
        twin.set_ylim(0, 1.35 * np.nanmax(right) + 1)               # headroom for the legend
        integer_axis(twin, "y")
        handles, labels = handles + [h], labels + [h.get_label()]
    if series:
        set_ylabel(ax, panel_ylabel)
    else:                                                           # only the right-axis series: the left axis is empty
        ax.set_yticks([])
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.set_title(panel_title, fontsize=10)
    ax.grid(alpha=0.3)
