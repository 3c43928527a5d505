"""Held-out evaluation shared by every model: the one fixed binarisation of a test set, the exact
KL(data || model) of a model on a toy dataset whose distribution is known, and two measures of sample quality
that compare a model's samples with real data through a feature map (:mod:`refvae.features`).

Sample quality, on features A (n, d) of generated images and B (m, d) of real ones:

- :func:`frechet_distance`: the Frechet distance between the Gaussians fitted to A and to B (the FID formula of
  Heusel et al. 2017, on whatever features are given):  |mu_A - mu_B|^2 + tr S_A + tr S_B - 2 tr (S_A^1/2 S_B S_A^1/2)^1/2.
  One number that mixes fidelity and diversity.
- :func:`precision_recall`: improved precision and recall (Kynkaanniemi et al. 2019). Each real point gets a ball
  reaching its k-th nearest real neighbour; precision is the share of generated points inside some real ball
  (are the samples realistic?), recall the share of real points inside some generated ball (does the model
  cover the data?).

References
----------
M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter, "GANs trained by a two time-scale update rule
converge to a local Nash equilibrium", NeurIPS 2017 (the Frechet inception distance).
T. Kynkaanniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila, "Improved precision and recall metric for assessing
generative models", NeurIPS 2019.

Test images (grey levels in [0, 1]) are binarised once, with a fixed seed, so that every evaluation of every
model with binary visible units scores the same binary test set. A Gaussian VAE's test ELBO and
importance-weighted log-likelihood are in :mod:`refvae.vae.evaluation`.
"""

from __future__ import annotations

from .backend import get_backend
from .validation import DataError

__all__ = ["TEST_BINARIZATION_SEED", "binarize_fixed", "frechet_distance", "kl_data_model", "precision_recall"]

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


# ------------------------------------------------------------------------------------------------
# sample quality on features
# ------------------------------------------------------------------------------------------------
def _features(F, name: str, min_rows: int, width=None):
    """F (n, d) as a float64 backend array, checked: 2-D, finite, at least ``min_rows`` rows."""
    B = get_backend()
    xp = B.xp
    shape = tuple(getattr(F, "shape", ()))
    if len(shape) != 2:
        raise DataError(f"{name} must be features of shape (n, d), one row per image; got shape {shape}")
    if width is not None and shape[1] != width:
        raise DataError(f"the two feature sets must have the same width d; got {width} and {shape[1]} (use the same "
                        "feature map for both)")
    if shape[0] < min_rows:
        raise DataError(f"{name} has {shape[0]} rows; at least {min_rows} are needed")
    F = B.asarray(F, dtype="float64")
    if not bool(xp.all(xp.isfinite(F))):
        raise DataError(f"{name} contains NaN or infinite values")
    return F


def _mean_and_covariance(F):
    """The mean (d,) and the sample covariance (d, d) of F (n, d), denominator n - 1."""
    xp = get_backend().xp
    mean = xp.mean(F, axis=0)
    centred = F - mean
    return mean, (centred.T @ centred) / (F.shape[0] - 1)


def _trace(C):
    return get_backend().xp.sum(C * get_backend().eye(C.shape[0], "float64"))   # CuPy has no linalg.diagonal


def frechet_distance(A, B) -> float:
    """The Frechet distance between N(mu_A, S_A) and N(mu_B, S_B) fitted to two feature sets (the FID formula).

        d^2 = |mu_A - mu_B|^2 + tr S_A + tr S_B - 2 tr (S_A^1/2 S_B S_A^1/2)^1/2

    As with FID, the number returned is this squared distance d^2 (0 for identical sets, in squared feature
    units). tr (S_A S_B)^1/2 is computed as tr (S_A^1/2 S_B S_A^1/2)^1/2, the square root of a *symmetric*
    positive semi-definite matrix: both roots come from symmetric eigen-decompositions (eigenvalues clipped at
    0), which stay stable for rank-deficient covariances (fewer samples than dimensions), where a general
    ``sqrtm`` of the non-symmetric S_A S_B returns complex noise.

    Parameters
    ----------
    A : array (n, d)
        Features of one set (e.g. generated images), n >= 2.
    B : array (m, d)
        Features of the other set (e.g. real images), m >= 2, the same d.

    Returns
    -------
    float
        d^2 >= 0.
    """
    xp = get_backend().xp
    A = _features(A, "A", 2)
    B = _features(B, "B", 2, width=A.shape[1])
    mean_a, cov_a = _mean_and_covariance(A)
    mean_b, cov_b = _mean_and_covariance(B)
    w, V = xp.linalg.eigh(cov_a)                                       # S_A = V diag(w) V^T
    sqrt_a = (V * xp.sqrt(xp.clip(w, 0.0, None))) @ V.T                 # S_A^1/2
    M = sqrt_a @ cov_b @ sqrt_a                                        # symmetric PSD, the same trace root as S_A S_B
    M = 0.5 * (M + M.T)                                                # exactly symmetric for eigvalsh
    trace_root = xp.sum(xp.sqrt(xp.clip(xp.linalg.eigvalsh(M), 0.0, None)))
    diff = mean_a - mean_b
    d2 = float(xp.sum(diff * diff) + _trace(cov_a) + _trace(cov_b) - 2.0 * trace_root)
    return max(d2, 0.0)


def _squared_distances(P, Q, q_norms):
    """|p_i - q_j|^2 for a block P (b, d) against all of Q (m, d), (b, m), clipped at 0 (rounding)."""
    xp = get_backend().xp
    p_norms = xp.sum(P * P, axis=1)
    d2 = xp.reshape(p_norms, (-1, 1)) + xp.reshape(q_norms, (1, -1)) - 2.0 * (P @ Q.T)
    return xp.clip(d2, 0.0, None)


def _rows_per_block(m: int, max_elements: int) -> int:
    return max(1, max_elements // max(m, 1))


def _knn_radii2(F, k: int, max_elements: int):
    """The squared distance from each row of F (n, d) to its k-th nearest other row, (n,)."""
    xp = get_backend().xp
    n = F.shape[0]
    norms = xp.sum(F * F, axis=1)
    step = _rows_per_block(n, max_elements)
    radii = []
    for i in range(0, n, step):
        d2 = xp.sort(_squared_distances(F[i:min(i + step, n), :], F, norms), axis=1)
        radii.append(d2[:, k])        # column 0 is the point itself (distance 0): column k is its k-th neighbour
    return xp.concat(radii) if len(radii) > 1 else radii[0]


def _share_inside(P, Q, radii2_q, max_elements: int) -> float:
    """The share of rows of P (n, d) that lie in at least one ball {x : |x - q_j|^2 <= r_j^2} around the rows of Q."""
    xp = get_backend().xp
    n, m = P.shape[0], Q.shape[0]
    norms = xp.sum(Q * Q, axis=1)
    step = _rows_per_block(m, max_elements)
    inside = 0.0
    for i in range(0, n, step):
        d2 = _squared_distances(P[i:min(i + step, n), :], Q, norms)                       # (b, m)
        inside += float(xp.sum(xp.astype(xp.any(d2 <= xp.reshape(radii2_q, (1, -1)), axis=1), xp.float64)))
    return inside / n


def precision_recall(A, B, k: int = 3, max_elements: int = 4_000_000):
    """Improved precision and recall of generated features A against real features B (Kynkaanniemi et al. 2019).

    Every point of a set gets a ball reaching its k-th nearest neighbour in the same set (itself not counted).

        precision = share of rows of A inside at least one ball of B    (samples that look like real data)
        recall    = share of rows of B inside at least one ball of A    (real data the samples cover)

    Parameters
    ----------
    A : array (n, d)
        Features of the generated images, n > k.
    B : array (m, d)
        Features of the real images, m > k, the same d. Use the same number of rows in A and B: the balls grow
        as a set thins, so the two numbers are comparable only between equal-sized sets.
    k : int
        The neighbour that sets each ball's radius (3 in the paper).
    max_elements : int
        The largest block of pairwise distances held at once (rows x columns); only memory depends on it.

    Returns
    -------
    (precision, recall) : tuple of float, each in [0, 1].
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    A = _features(A, "A", k + 1)
    B = _features(B, "B", k + 1, width=A.shape[1])
    radii2_a = _knn_radii2(A, k, max_elements)
    radii2_b = _knn_radii2(B, k, max_elements)
    precision = _share_inside(A, B, radii2_b, max_elements)
    recall = _share_inside(B, A, radii2_a, max_elements)
    return precision, recall
