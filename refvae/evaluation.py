"""Held-out evaluation shared by every model: the one fixed binarisation of a test set, and the exact
KL(data || model) of a model on a toy dataset whose distribution is known.

Test images (grey levels in [0, 1]) are binarised once, with a fixed seed, so that every evaluation of every
model with binary visible units scores the same binary test set. A Gaussian VAE's test ELBO and
importance-weighted log-likelihood are in :mod:`refvae.vae.evaluation`.
"""

from __future__ import annotations

from .backend import get_backend

__all__ = ["TEST_BINARIZATION_SEED", "binarize_fixed", "kl_data_model"]

TEST_BINARIZATION_SEED = 1234


def binarize_fixed(X, seed: int = TEST_BINARIZATION_SEED):
    """One fixed Bernoulli sample of X (n, d) in [0, 1]: ``numpy.random.default_rng(seed).random(X.shape) < X``.

    The uniforms are float64 and made on the host, so the binary test set is the same on every backend
    (and the same as any other implementation that uses this recipe).
    """
    B = get_backend()
    X = B.asarray(X)
    u = B.rng(seed, host=True).uniform(tuple(X.shape), "float64")
    return B.xp.astype(u < B.xp.astype(X, u.dtype), X.dtype)


def kl_data_model(probs, model_log_probs) -> float:
    """KL(data || model) = sum_x p(x) [log p(x) - log P_model(x)], in nats.

    Parameters
    ----------
    probs : array_like (n,)
        The exact data probabilities of n distinct patterns (``refvae.datasets.data_distribution``); they
        should sum to 1 (the patterns with zero probability contribute nothing and may be left out).
    model_log_probs : array_like (n,)
        The model's exact log-probabilities of the same patterns (host or device array).

    Returns
    -------
    float
        The divergence, >= 0 up to rounding when the model's probabilities are normalised; 0 only when the
        model puts the data's probability on every pattern.
    """
    import numpy as np  # host-side arithmetic on n numbers

    p = np.asarray(probs, dtype=np.float64)
    log_q = np.asarray(get_backend().to_numpy(model_log_probs), dtype=np.float64)
    if p.ndim != 1 or log_q.shape != p.shape:
        raise ValueError(f"probs and model_log_probs must be 1-D of the same length, got {p.shape} and {log_q.shape}")
    if np.any(p < 0) or not np.isclose(p.sum(), 1.0, atol=1e-9):
        raise ValueError(f"probs must be non-negative and sum to 1 (they sum to {p.sum()!r})")
    if not np.all(np.isfinite(log_q[p > 0])):
        return float("inf")
    keep = p > 0
    return float(np.sum(p[keep] * (np.log(p[keep]) - log_q[keep])))
