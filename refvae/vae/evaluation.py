"""A Gaussian VAE's held-out evaluation: the test ELBO (with its two terms) and the importance-weighted
log-likelihood, on the test set binarised once (:func:`refvae.evaluation.binarize_fixed`) for a Bernoulli decoder."""

from __future__ import annotations

import time

from ..backend import get_backend
from ..evaluation import binarize_fixed

__all__ = ["evaluate_vae"]


def evaluate_vae(model, X, *, k: int = 1000, elbo_draws: int = 10, seed: int = 0, binarize: bool | None = None,
                 progress: bool = False) -> dict:
    """Mean test ELBO (its two terms) and importance-weighted log-likelihood of ``model`` on ``X``.

    Parameters
    ----------
    X : array (n, x_dim)
    k : int
        Importance samples per example for ``log_likelihood`` (Burda et al. use 5000).
    elbo_draws : int
        The single-sample ELBO is averaged over this many draws of the noise.
    binarize : bool, optional
        Binarise X once with a fixed seed (default: yes for a Bernoulli decoder).
    seed : int
        Seeds the ELBO's noise (generator ``(seed, 1)``) and the importance samples (``(seed, 2)``), passed to the
        model's methods as ``rng``: the model's own generator is neither used nor changed.

    Returns
    -------
    dict
        ``elbo``, ``reconstruction``, ``kl`` (nats per example, means over X and draws),
        ``log_likelihood`` (mean IW estimate, nats), ``k``, ``n``, ``seconds_log_likelihood``.
    """
    B = get_backend()
    xp = B.xp
    if binarize is None:
        binarize = model.likelihood == "bernoulli"
    X = model.validate_data(X)
    if binarize:
        X = binarize_fixed(X)
    elbo_rng = B.rng((seed, 1))                       # the ELBO's noise, draw after draw
    rec_sum = kl_sum = 0.0
    for _ in range(elbo_draws):
        rec, kl = model.elbo_terms(X, rng=elbo_rng)
        rec_sum += float(xp.mean(rec))
        kl_sum += float(xp.mean(kl))
    t0 = time.perf_counter()
    ll = model.log_likelihood(X, k=k, rng=B.rng((seed, 2)), progress=progress)
    ll_mean = float(xp.mean(ll))
    seconds = time.perf_counter() - t0
    rec, kl = rec_sum / elbo_draws, kl_sum / elbo_draws
    return {"elbo": rec - kl, "reconstruction": rec, "kl": kl, "log_likelihood": ll_mean, "k": int(k),
            "n": int(X.shape[0]), "binarized": bool(binarize), "seconds_log_likelihood": seconds}
