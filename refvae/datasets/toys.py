"""The toy datasets whose distribution is known exactly: bars-and-stripes (every pattern) and Hinton's bars (a
distribution over those patterns), with the exact data distribution for KL(data || model)."""

from __future__ import annotations

import numpy as np

__all__ = ["bars_and_stripes", "data_distribution", "hinton_bars", "sample_distribution"]

# Largest grid side for bars-and-stripes (2**17 - 2 patterns of 256 pixels, about 134 MB).
_BARS_MAX_SIDE = 16


def _check_side(side) -> int:
    if isinstance(side, bool) or not hasattr(side, "__index__"):
        raise ValueError(f"side must be an integer between 1 and {_BARS_MAX_SIDE}, got {side!r}")
    side = int(side)
    if not 1 <= side <= _BARS_MAX_SIDE:
        raise ValueError(
            f"side must be between 1 and {_BARS_MAX_SIDE}, got {side}: a side x side grid has "
            f"2**(side+1) - 2 patterns, so pick a small grid such as side=4 (30 patterns)"
        )
    return side


def bars_and_stripes(side: int = 4) -> np.ndarray:
    """All distinct bars-and-stripes patterns on a ``side`` x ``side`` grid.

    A pattern is made by choosing an orientation, then switching each of the ``side`` rows (or
    columns) fully on or off. The all-off and all-on grids arise in both orientations and are kept
    once, leaving ``2**(side+1) - 2`` distinct patterns.

    Parameters
    ----------
    side : int, default 4
        Grid side, between 1 and 16.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(2**(side+1) - 2, side*side)`` with values in {0, 1}; each row is a
        grid flattened in row-major order. Rows are sorted lexicographically (so the all-off grid
        comes first and the all-on grid last), which makes the order deterministic.
    """
    side = _check_side(side)
    # on[m, i] says whether line i is on in pattern number m (bit i of m).
    on = (np.arange(2**side)[:, None] >> np.arange(side)[None, :]) & 1
    rows = np.repeat(on[:, :, None], side, axis=2)  # (2**side, side, side): row i constant
    cols = np.transpose(rows, (0, 2, 1))  # column j constant
    grids = np.concatenate([rows, cols]).reshape(-1, side * side)
    return np.unique(grids, axis=0).astype(np.float32)


def _bars_labels(patterns: np.ndarray, side: int) -> np.ndarray:
    """0 = horizontal stripes (rows), 1 = vertical bars (columns), 2 = blank or full grid."""
    grids = patterns.reshape(-1, side, side)
    blank_or_full = np.all(grids == grids[:, :1, :1], axis=(1, 2))
    rows_constant = np.all(grids == grids[:, :, :1], axis=(1, 2))
    y = np.where(rows_constant, 0, 1)
    y[blank_or_full] = 2
    return y.astype(np.int64)


def _load_bars(labels: bool, side: int = 4):
    patterns = bars_and_stripes(side)
    if labels:
        y = _bars_labels(patterns, side)
        return (patterns, y), (patterns.copy(), y.copy())
    return patterns, patterns.copy()


def _check_probability(value, name, open_interval=False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a probability, got {value!r}") from None
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok:
        raise ValueError(f"{name} must be in {'(0, 1)' if open_interval else '[0, 1]'}, got {value}")
    return value


def hinton_bars(side: int = 4, p: float = 0.2, p_vertical: float = 2.0 / 3.0):
    """The exact distribution of Hinton's bars (Hinton, Dayan, Frey & Neal, Science 1995).

    An image on a ``side`` x ``side`` grid is made by choosing the orientation, vertical with probability
    ``p_vertical`` and horizontal otherwise, then switching each of the ``side`` bars of that orientation on
    independently with probability ``p``. With k of the side bars on::

        P(image) = P(orientation) p^k (1 - p)^(side - k)

    The blank and the full grid can be made in both orientations; their probabilities add (the blank has
    (1 - p)^side, 0.4096 at the defaults). The 1995 paper's setting is the default: 4 x 4, p = 0.2,
    vertical with probability 2/3.

    Returns
    -------
    patterns : numpy.ndarray, (2**(side+1) - 2, side*side) float32 in {0, 1}
        Every image with non-zero probability, sorted as in :func:`bars_and_stripes`.
    probs : numpy.ndarray, (2**(side+1) - 2,) float64
        Their probabilities (they sum to 1 to rounding).
    """
    side = _check_side(side)
    p = _check_probability(p, "p", open_interval=True)
    p_vertical = _check_probability(p_vertical, "p_vertical")
    patterns = bars_and_stripes(side)
    grids = patterns.reshape(-1, side, side).astype(bool)
    rows_constant = np.all(grids == grids[:, :, :1], axis=(1, 2))      # horizontal bars: each row constant
    cols_constant = np.all(grids == grids[:, :1, :], axis=(1, 2))      # vertical bars: each column constant
    k_rows = grids[:, :, 0].sum(axis=1)                                # horizontal bars that are on
    k_cols = grids[:, 0, :].sum(axis=1)                                # vertical bars that are on
    probs = np.zeros(patterns.shape[0])
    probs += np.where(rows_constant, (1.0 - p_vertical) * p ** k_rows * (1.0 - p) ** (side - k_rows), 0.0)
    probs += np.where(cols_constant, p_vertical * p ** k_cols * (1.0 - p) ** (side - k_cols), 0.0)
    return patterns, probs


def data_distribution(name: str, **kwargs):
    """The exact data distribution of a toy dataset: ``(patterns, probs)``, every pattern with non-zero probability.

    ``"bars"``: the bars-and-stripes patterns, uniform (keyword ``side``). ``"hinton-bars"``: see
    :func:`hinton_bars` (keywords ``side``, ``p``, ``p_vertical``). With it, KL(data || model) of a model whose
    log-likelihood can be computed exactly is ``sum(probs * (log(probs) - model_log_prob(patterns)))``
    (:func:`refvae.evaluation.kl_data_model`).
    """
    if name == "bars":
        unexpected = sorted(set(kwargs) - {"side"})
        if unexpected:
            raise TypeError(f"data_distribution('bars') got unexpected keyword arguments {unexpected}; it accepts side")
        patterns = bars_and_stripes(kwargs.get("side", 4))
        return patterns, np.full(patterns.shape[0], 1.0 / patterns.shape[0])
    if name == "hinton-bars":
        unexpected = sorted(set(kwargs) - {"side", "p", "p_vertical"})
        if unexpected:
            raise TypeError(f"data_distribution('hinton-bars') got unexpected keyword arguments {unexpected}; "
                            "it accepts side, p, p_vertical")
        return hinton_bars(**kwargs)
    raise ValueError(f"no exact distribution is known for dataset {name!r}: only for 'bars' and 'hinton-bars'")


def sample_distribution(patterns, probs, n: int, seed: int = 0) -> np.ndarray:
    """``n`` independent draws (rows of ``patterns``, float32) from the discrete distribution ``probs``."""
    if isinstance(n, bool) or not hasattr(n, "__index__") or int(n) < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.shape[0] != len(patterns) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
        raise ValueError("probs must be one non-negative probability per pattern, summing to 1")
    index = np.random.default_rng(seed).choice(len(patterns), size=int(n), p=probs / probs.sum())
    return np.asarray(patterns, dtype=np.float32)[index]


def _load_hinton_bars(labels: bool, side: int = 4, p: float = 0.2, p_vertical: float = 2.0 / 3.0,
                      n_train: int = 20000, n_test: int = 2000, seed: int = 0):
    patterns, probs = hinton_bars(side, p, p_vertical)
    train = sample_distribution(patterns, probs, n_train, seed=seed)
    test = sample_distribution(patterns, probs, n_test, seed=seed + 1_000_003)
    if labels:
        return (train, _bars_labels(train, side)), (test, _bars_labels(test, side))
    return train, test
