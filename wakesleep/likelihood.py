"""Likelihoods of a Helmholtz machine: exact by enumerating the hidden configurations, and importance-sampled with
the recognition model as the proposal.

Exact (small models, H hidden units in all)::

    log P(x) = logsumexp over the 2^H configurations h of [ log P(h_1..h_L) + log P(x | h_1) ]

with log P(x | h_1) = x.a - sum_i softplus(a_i), a the logits of x given h_1, computed for every x and every h of
a chunk at once.

Importance sampling (Burda, Grosse & Salakhutdinov 2015; Bornschein & Bengio 2015)::

    log P(x) ~= logsumexp_i [ log P(x, h_i) - log Q(h_i | x) ] - log k,     h_i ~ Q(. | x)

a stochastic lower bound (in expectation) that tightens as k grows.
"""

from __future__ import annotations

import math

from refvae.enumeration import binary_states
from refvae.fast import map_blocks
from refvae.numerics import bernoulli_log_prob, logsumexp, softplus

__all__ = ["MAX_HIDDEN_ENUMERATION", "configurations_log_joint", "exact_log_likelihood", "importance_log_likelihood",
           "paired_with_states", "split_layers"]

#: Exact likelihoods enumerate all 2^H configurations of the H hidden units (2^20 ~ one million).
MAX_HIDDEN_ENUMERATION = 20


def split_layers(states, sizes):
    """The columns of hidden configurations ``states`` (m, sum(sizes)) split by layer: [h_1 (m, n_1), ...]."""
    hs, offset = [], 0
    for n_l in sizes:
        hs.append(states[:, offset:offset + n_l])
        offset += n_l
    return hs


def paired_with_states(model, X, start, stop):
    """Every row of X (n, n_visible) paired with every hidden configuration with codes start..stop-1 (m of
    them): (xs (n * m, n_visible), hs [h_1 (n * m, n_1), ...]), row i * m + s holding (x_i, state s)."""
    xp = model.xp
    sizes = model.layer_sizes[1:]
    H = sum(sizes)
    states = binary_states(start, stop, H, model.dtype_name)                    # (m, H)
    n, m = X.shape[0], states.shape[0]
    tiled = xp.reshape(xp.broadcast_to(xp.expand_dims(states, axis=0), (n, m, H)), (n * m, H))
    return model._repeat(X, m), split_layers(tiled, sizes)


def configurations_log_joint(model, X, start, stop, log_z=None):
    """(hs, gen_logits, log_joint) for the hidden configurations with codes start..stop-1: the states split by
    layer, their generative logits (those of x first, (m, n_visible)), and log P(x, h) for every row of X and
    every configuration, (batch, m)."""
    xp = model.xp
    sizes = model.layer_sizes[1:]
    hs = split_layers(binary_states(start, stop, sum(sizes), model.dtype_name), sizes)
    gen_logits = [model.generative_logits(l, hs[l - 1]) for l in range(1, len(sizes) + 1)]
    log_p_h = model.log_prior(hs[-1], log_z)                                     # log P(h_1..h_L), (m,)
    for l in range(2, len(sizes) + 1):
        log_p_h = log_p_h + bernoulli_log_prob(hs[l - 2], gen_logits[l - 1])
    a = gen_logits[0]                                                            # logits of x, (m, n_visible)
    # log P(x | h_1) = x.a - sum_i softplus(a_i), for every x and every h at once: (batch, m)
    log_joint = X @ a.T - xp.reshape(xp.sum(softplus(a), axis=1) - log_p_h, (1, -1))
    return hs, gen_logits, log_joint


def exact_log_likelihood(model, X, chunk: int = 2**14, progress: bool = False):
    """log P(x) = log sum_h P(x, h) per example (batch,), over all 2^H configurations of the H hidden units,
    enumerated in chunks of ``chunk`` with a running log-sum-exp (H <= MAX_HIDDEN_ENUMERATION)."""
    xp = model.xp
    sizes = model.layer_sizes[1:]
    H = sum(sizes)
    if H > MAX_HIDDEN_ENUMERATION:
        raise ValueError(f"the exact likelihood enumerates all 2^{H} configurations of the {H} hidden units "
                         f"(layers {tuple(sizes)}), more than the limit of {MAX_HIDDEN_ENUMERATION} units: use "
                         "log_likelihood(X, method='importance', k=...) for a model this large")
    log_z = model._rbm_log_z() if model.prior == "rbm" else None
    total = None
    starts = range(0, 2 ** H, chunk)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc=f"exact log P(x) (2^{H} states)", unit="chunk", leave=False, mininterval=0.5)
    for start in starts:
        _, _, log_joint = configurations_log_joint(model, X, start, min(start + chunk, 2 ** H), log_z)   # (batch, m)
        part = logsumexp(log_joint, axis=1)
        total = part if total is None else xp.logaddexp(total, part)
    return total


def importance_log_likelihood(model, X, k: int, seed=None, max_rows: int = 8192):
    """log P(x) ~= logsumexp_i (log P(x, h_i) - log Q(h_i | x)) - log k per example (batch,), h_i ~ Q(.|x): a
    stochastic lower bound that converges to log P(x) as k grows, in chunks of at most ``max_rows`` sampled rows."""
    xp, B = model.xp, model.backend
    rng = model.rng if seed is None else B.rng(seed)
    log_z = model._rbm_log_z() if model.prior == "rbm" else None
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
            xs = model._repeat(xb, s)                                             # (m * s, n_visible)
            hs, rec_logits = model._recognize(xs, rng)                           # h_i ~ Q(.|x), in order
            log_q = model._log_q(hs, rec_logits)

            def log_joint_rows(a, b):                                           # log P(x, h_i), rows a..b-1
                h_ab = [h[a:b, :] for h in hs]
                return model._log_joint(xs[a:b, :], h_ab, model._gen_logits(h_ab), log_z)

            blocks = map_blocks(B, log_joint_rows, m * s, block=512)            # on every core with NumPy
            log_joint = xp.concat(blocks) if len(blocks) > 1 else blocks[0]
            parts.append(xp.reshape(log_joint - log_q, (m, s)))
        log_w = xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]          # (m, k)
        results.append(logsumexp(log_w, axis=1) - math.log(k))
    return xp.concat(results) if len(results) > 1 else results[0]
