"""Likelihoods of a Helmholtz machine: exact by enumerating the hidden configurations, and importance-sampled with
the recognition model as the proposal. Functions of the two lists of layers (``gen``, ``rec``) and of
``log_prior``: h_L (rows, n_L) -> log P(h_L) (rows,); the equations are in :mod:`wakesleep.rules`.

Exact (small models, H hidden units in all; :func:`wakesleep.rules.exact_log_px`)::

    log P(x) = logsumexp over the 2^H configurations h of [ log P(h_1..h_L) + log P(x | h_1) ]

Importance sampling (Burda, Grosse & Salakhutdinov 2016; Bornschein & Bengio 2015;
:func:`wakesleep.rules.iw_bound`)::

    log P(x) ~= logsumexp_i [ log P(x, h_i) - log Q(h_i | x) ] - log k,     h_i ~ Q(. | x)

a stochastic lower bound (in expectation) that tightens as k grows.
"""

from __future__ import annotations

from refvae.backend import get_backend
from refvae.fast import map_blocks

from .rules import exact_log_px, generative_logits, hidden_sizes, iw_bound, log_joint, log_q, recognize, repeat_rows

__all__ = ["MAX_HIDDEN_ENUMERATION", "exact_log_likelihood", "importance_log_likelihood"]

#: Exact likelihoods enumerate all 2^H configurations of the H hidden units (2^20 ~ one million).
MAX_HIDDEN_ENUMERATION = 20


def exact_log_likelihood(gen, log_prior, X, chunk: int = 2**14, progress: bool = False):
    """log P(x) = log sum_h P(x, h) per example (batch,), over all 2^H configurations of the H hidden units,
    enumerated in chunks of ``chunk`` with a running log-sum-exp (H <= MAX_HIDDEN_ENUMERATION)."""
    sizes = hidden_sizes(gen)
    H = sum(sizes)
    if H > MAX_HIDDEN_ENUMERATION:
        raise ValueError(f"the exact likelihood enumerates all 2^{H} configurations of the {H} hidden units "
                         f"(layers {tuple(sizes)}), more than the limit of {MAX_HIDDEN_ENUMERATION} units: use "
                         "log_likelihood(X, method='importance', k=...) for a model this large")
    return exact_log_px(gen, log_prior, X, chunk, progress)


def importance_log_likelihood(gen, rec, log_prior, X, k: int, rng, max_rows: int = 8192):
    """log P(x) ~= logsumexp_i (log P(x, h_i) - log Q(h_i | x)) - log k per example (batch,), h_i ~ Q(.|x) drawn
    from ``rng``: a stochastic lower bound that converges to log P(x) as k grows, in chunks of at most
    ``max_rows`` sampled rows."""
    B = get_backend()
    xp = B.xp
    n = X.shape[0]
    samples_per_chunk = min(k, max_rows)                          # samples per example per pass
    examples_per_chunk = max(1, max_rows // samples_per_chunk)    # examples per pass
    results = []
    for i0 in range(0, n, examples_per_chunk):
        xb = X[i0:min(i0 + examples_per_chunk, n), :]
        m = xb.shape[0]
        parts = []
        for j0 in range(0, k, samples_per_chunk):
            s = min(samples_per_chunk, k - j0)
            xs = repeat_rows(xb, s)                                               # (m * s, n_visible)
            hs, rec_logits = recognize(rec, xs, rng)                              # h_i ~ Q(.|x), in order
            log_q_rows = log_q(hs, rec_logits)

            def log_joint_rows(a, b):                                           # log P(x, h_i), rows a..b-1
                h_ab = [h[a:b, :] for h in hs]
                return log_joint(log_prior(h_ab[-1]), xs[a:b, :], h_ab, generative_logits(gen, h_ab))

            blocks = map_blocks(B, log_joint_rows, m * s, block=512)            # on every core with NumPy
            log_joint_all = xp.concat(blocks) if len(blocks) > 1 else blocks[0]
            parts.append(xp.reshape(log_joint_all - log_q_rows, (m, s)))
        log_w = xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]          # log w_i, (m, k)
        results.append(iw_bound(log_w))
    return xp.concat(results) if len(results) > 1 else results[0]
