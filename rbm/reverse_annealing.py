r"""RAISE: a conservative estimate of an RBM's $\log P(v)$ by reverse annealing (Burda, Grosse & Salakhutdinov 2015).

AIS (rbm/partition.py) estimates $\log Z$ from below in expectation (Jensen), so $\log P(v) = -F(v) - \log Z$ from
an AIS $\log Z$ errs *upwards*: a model can look better than it is. RAISE errs the other way and so brackets the
truth.

The annealing model. With the intermediate distributions of AIS, $f_k(v) = p^*_{\beta_k}(v)$ for
$\beta_0 = 0 < \dots < \beta_K = 1$ ($f_0 = Z_A p_A$, the base-rate model; $f_K = \exp(-F)$, the RBM) and $T_k$ a
Gibbs sweep $v \to h \to v$ at $\beta_k$ (which leaves $p_k$ invariant and is reversible with respect to it),
define the generative chain:

.. math::

    v_0 \sim p_A, \quad v_k \sim T_k(\cdot \mid v_{k-1}) \text{ for } k = 1..K; \qquad
    p_\text{ann}(v) = \text{the law of } v_K

$p_\text{ann}$ approaches the RBM as the annealing slows. Reverse annealing starts at the data, $v_K = x$, and runs
the sweeps backwards, $v_{k-1} \sim T_k(\cdot \mid v_k)$ for $k = K..1$; the importance weight of this proposal
against the annealing model is, since $T_k$ is its own reversal with respect to $p_k$ (the $Z_k$ cancel):

.. math::

    w = p_A(v_0) \prod_{k=1}^{K} f_k(v_k) / f_k(v_{k-1})

    \log w = -F(x) - \log Z_A + \sum_{k=1}^{K} [\log f_{k-1}(v_{k-1}) - \log f_k(v_{k-1})]

$\mathbb{E}[w] = p_\text{ann}(x)$ exactly, so $\log \operatorname{mean}_s w$ over $S$ chains is a stochastic lower
bound on $\log p_\text{ann}(x)$, and $p_\text{ann}$ is the RBM seen through a finite annealing: in practice (and in
the paper's experiments) no better a model of the data than the RBM, so the estimate is conservative. The terms
are the AIS increments with the roles of the temperatures swapped, evaluated on the reverse chain's states.

Cost: one chain per test example and temperature, as much as AIS with that many chains: RAISE is run on a random
subset of the test images, and its mean carries the standard error over that subset.

References
----------
Y. Burda, R. Grosse, R. Salakhutdinov, "Accurate and Conservative Estimates of MRF Log-likelihood using Reverse
Annealing", AISTATS 2015.
R. M. Neal, "Annealed importance sampling", Statistics and Computing 11, 2001.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from refvae.backend import get_backend
from refvae.numerics import logsumexp, sigmoid, softplus
from refvae.validation import check_finite_params, check_positive_int

from .partition import ais_schedule, annealing_increment, base_rate_biases

__all__ = ["RAISEEstimate", "raise_log_likelihood", "raise_log_weights"]


def raise_log_weights(model, V, schedule, b_a, n_chains, rng, progress=False):
    r"""$\log w$ of reverse annealing from each row of V (n, n_visible), ``n_chains`` chains each: (n, n_chains)
    float64, without the constant $-\log Z_A$ (added by :func:`raise_log_likelihood`).

    For $k = K..1$: a sweep at $\beta_k$ moves $v_k$ to $v_{k-1}$ ($h \sim \sigma(\beta_k a)$,
    $v \sim \sigma((1 - \beta_k) b_A + \beta_k (b + h W^\top))$), then
    $\log w \leftarrow \log w + \log f_{k-1}(v_{k-1}) - \log f_k(v_{k-1})$. $\log w$ starts at
    $-F(x) = \log f_K(x)$.
    """
    xp = model.xp
    params = model.params
    W, b, c = params["W"], params["b"], params["c"]
    n = V.shape[0]
    d = V.shape[1]
    v = xp.reshape(xp.broadcast_to(xp.expand_dims(V, axis=1), (n, n_chains, d)), (n * n_chains, d))    # (n S, d)
    log_w = xp.astype(-model.free_energy(v), xp.float64)                               # log f_K(x) = -F(x)
    a = v @ W + c                                                                       # (n S, n_hidden)
    steps = range(len(schedule) - 1, 0, -1)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc=f"RAISE ({n} x {n_chains} chains)", unit="temperature", leave=False, mininterval=0.5)
    for k in steps:
        beta, beta_next = schedule[k], schedule[k - 1]
        h = rng.bernoulli(sigmoid(beta * a))                                            # the sweep at beta_k
        v = rng.bernoulli(sigmoid((1.0 - beta) * b_a + beta * (h @ W.T + b)))
        a = v @ W + c
        # $\log f_{k-1}(v_{k-1}) - \log f_k(v_{k-1})$
        increment = annealing_increment(v @ b_a, v @ b, a, beta, beta_next)
        log_w = log_w + xp.astype(increment, xp.float64)
    return xp.reshape(log_w, (n, n_chains))


@dataclass(frozen=True)
class RAISEEstimate:
    """RAISE's conservative log-likelihoods and the log Z they imply.

    ``log_p`` (n,): per example, log mean_s w over its chains (a host float64 array); ``mean`` and ``se``: their
    mean and its standard error over the examples. ``log_z``: the log Z that RAISE implies, the mean over the
    examples of -F(x) - log_p(x), an estimate that errs upwards (where AIS's errs downwards), with ``log_z_se``,
    its standard error over the examples: far smaller than ``se``, since -F(x) cancels and only the annealing's
    noise is left. On the same examples, log P from AIS's log Z minus RAISE's is ``log_z - ais_log_z``: the width of
    the bracket.
    """

    log_p: object
    mean: float
    se: float
    log_z: float
    log_z_se: float
    n_chains: int
    temperatures: int

    def describe(self) -> str:
        return (f"RAISE mean log P(v) = {self.mean:.2f} +- {self.se:.2f} (s.e. over {len(self.log_p)} examples), "
                f"implied log Z = {self.log_z:.2f} +- {self.log_z_se:.2f}; {self.n_chains} chain(s) each, "
                f"{self.temperatures} temperatures")


def _mean_and_se(values) -> tuple:
    """The mean of a float64 array (n,) and its standard error (inf for one value), as floats."""
    xp = get_backend().xp
    n = values.shape[0]
    mean = float(xp.mean(values))
    # sample sd sqrt(sum (x - mean)^2 / (n - 1)) over sqrt(n)
    se = math.sqrt(float(xp.sum((values - mean) ** 2)) / (n - 1) / n) if n > 1 else math.inf
    return mean, se


def raise_log_likelihood(model, V, n_chains: int = 1, betas=14500, data=None, seed: int = 0, rng=None,
                         progress=False, batch: int = 1000) -> RAISEEstimate:
    r"""RAISE estimates of $\log P(v)$ for each row of V (n, n_visible): conservative, to bracket the AIS ones.

    Parameters
    ----------
    V : array (n, n_visible)
        Binary examples (test images; a subset, since each costs one AIS run of ``betas`` temperatures).
    n_chains : int
        Reverse chains per example $S$; the estimate is $\log \operatorname{mean}_s w$ (tighter as $S$ grows).
    betas : int or sequence of float
        Temperatures as in :func:`rbm.partition.ais_log_partition` (default: Salakhutdinov & Murray's 14,500).
    data : array, optional
        Data whose pixel means set the base model's biases, as for AIS (uniform without it).
    seed, rng
        The generator of the chains (``rng``, else one seeded by ``seed``).
    batch : int
        Examples annealed at once (memory: batch * n_chains chains).
    """
    check_finite_params(model.params, "the RBM")
    B = get_backend()
    xp = model.xp
    V = model.validate_data(V, "V")
    S = check_positive_int(n_chains, "n_chains")
    schedule = ais_schedule(betas)
    b_a = base_rate_biases(model, data)
    # $\log Z_A = \sum_i \operatorname{softplus}(b_{A,i}) + n_\text{hidden} \log 2$
    log_z_a = float(xp.sum(softplus(b_a))) + model.n_hidden * math.log(2.0)
    rng = B.rng(seed) if rng is None else rng
    log_p, minus_f = [], []
    for start in range(0, V.shape[0], batch):
        rows = V[start:min(start + batch, V.shape[0]), :]
        log_w = raise_log_weights(model, rows, schedule, b_a, S, rng, progress)
        # $\log p(x) \approx \log \operatorname{mean}_s w_s = \operatorname{logsumexp}_s \log w_s - \log S - \log Z_A$
        log_p.append(logsumexp(log_w, axis=1) - (math.log(S) + log_z_a))
        minus_f.append(xp.astype(-model.free_energy(rows), xp.float64))
    log_p, minus_f = xp.concat(log_p), xp.concat(minus_f)
    mean, se = _mean_and_se(log_p)
    log_z, log_z_se = _mean_and_se(minus_f - log_p)                     # log Z = -F(x) - log p(x), per example
    return RAISEEstimate(B.to_numpy(log_p), mean, se, log_z, log_z_se, S, len(schedule))
