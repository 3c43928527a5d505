r"""Partition functions and model expectations of a Bernoulli RBM: exact enumeration and AIS.

Exact (small models). Summing the joint over the larger layer analytically leaves a sum over the $2^m$ states
of the smaller layer ($m$ units), done in batches with log-sum-exp:

.. math::

    \text{enumerate } h: \quad
    \log Z = \operatorname{logsumexp}_h [c \cdot h + \sum_i \operatorname{softplus}(b_i + (W h)_i)]

    \text{enumerate } v: \quad \log Z = \operatorname{logsumexp}_v [-F(v)]

Annealed importance sampling (Neal 2001; Salakhutdinov & Murray 2008). Intermediate distributions between a
base-rate model A ($W = 0$, $c = 0$, visible biases $b_A$ from the data's pixel means) and the RBM B:

.. math::

    \log p^*_\beta(v) = (1 - \beta)\, b_A \cdot v + \beta\, b \cdot v
    + \sum_j \operatorname{softplus}(\beta (c_j + (v W)_j))

    \log Z_A = \sum_i \operatorname{softplus}(b_{A,i}) + n_\text{hidden} \log 2

Chains start at exact samples of A; at each $\beta_k$ the importance weight gains
$\log p^*_k(v) - \log p^*_{k-1}(v)$ and $v$ moves by one Gibbs sweep that leaves $p_k$ invariant (except at the
last, $\beta = 1$, where the weights are complete: $K$ temperatures take $K - 2$ sweeps). Then
$\log Z_B \approx \log Z_A + \log \operatorname{mean}_\text{chains} \exp(\log w)$, with bounds
$\log(\operatorname{mean}(w) \pm 3 \operatorname{sd}(w) / \sqrt{M})$.

References
----------
R. M. Neal, "Annealed importance sampling", Statistics and Computing 11, 2001.
R. Salakhutdinov, I. Murray, "On the Quantitative Analysis of Deep Belief Networks", ICML 2008.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from refvae.backend import get_backend
from refvae.validation import check_finite_params, check_positive_int
from refvae.enumeration import binary_states
from refvae.fast import map_blocks
from refvae.numerics import clipped_logit, logsumexp, sigmoid, softplus

__all__ = ["AISEstimate", "AISWarning", "ESS_FRACTION", "MAX_ENUMERATION", "ais_betas", "ais_estimate",
           "ais_log_partition", "ais_log_weights", "ais_schedule", "annealing_increment", "base_rate_biases",
           "exact_log_partition", "model_expectations", "model_expectations_one_pass"]

MAX_ENUMERATION = 25   # units in the smaller layer (2^25 = 33.5 million states)


def _enumeration_layer(model):
    """'hidden' or 'visible': the smaller layer, checked against MAX_ENUMERATION."""
    m = min(model.n_visible, model.n_hidden)
    if m > MAX_ENUMERATION:
        raise ValueError(f"exact enumeration needs 2^{m} states of the smaller layer ({m} units), more than the "
                         f"limit of {MAX_ENUMERATION} units (2^{MAX_ENUMERATION} states): use "
                         "log_partition(method='ais') and log_likelihood(V, log_z=...) for a model this large")
    return "hidden" if model.n_hidden <= model.n_visible else "visible"


def _log_unnormalised(model, S, layer):
    """log of the unnormalised marginal of the enumerated layer's states S, (n_states,)."""
    xp = model.xp
    W, b, c = model.params["W"], model.params["b"], model.params["c"]
    if layer == "hidden":
        return S @ c + xp.sum(softplus(S @ W.T + b), axis=1)          # c.h + sum_i softplus(b_i + (W h)_i)
    return -model.free_energy(S)


def _chunks(layer_size, batch):
    total = 2 ** layer_size
    for start in range(0, total, batch):
        yield start, min(start + batch, total)


def exact_log_partition(model, batch: int = 2**14, progress: bool = False) -> float:
    r"""$\log Z$ by enumerating every state of the smaller layer, in batches, with log-sum-exp (``progress``: a bar
    over the batches, for the layers of 20 units and more that take seconds to minutes)."""
    check_finite_params(model.params, "the RBM")
    xp = model.xp
    layer = _enumeration_layer(model)
    m = model.n_hidden if layer == "hidden" else model.n_visible
    chunks = _chunks(m, batch)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(list(chunks), desc=f"exact log Z (2^{m} states)", unit="batch", leave=False, mininterval=0.5)
    # $\log Z = \operatorname{logsumexp}_\text{batches} \operatorname{logsumexp}_{s \in \text{batch}} \log p^*(s)$,
    # $s$ the states of the smaller layer
    partial = [logsumexp(_log_unnormalised(model, binary_states(a, z, m, model.dtype_name), layer), axis=0)
               for a, z in chunks]
    return float(logsumexp(xp.stack(partial), axis=0))


def model_expectations(model, batch: int = 2**14, fast: bool = True) -> dict:
    r"""Exact $\mathbb{E}_\text{model}[v]$, $\mathbb{E}_\text{model}[h]$ and $\mathbb{E}_\text{model}[v h^\top]$ by
    enumerating the smaller layer.

    The textbook form below takes two passes: log Z first, then every state's probability times its moments.
    ``fast=True`` (when the hidden layer is the one enumerated) runs its one-pass twin, defined just below,
    :func:`model_expectations_one_pass` (tested equal to this).

    Returns ``{"v": (n_visible,), "h": (n_hidden,), "vh": (n_visible, n_hidden), "log_z": float}`` (device arrays).
    """
    xp = model.xp
    W, b, c = model.params["W"], model.params["b"], model.params["c"]
    layer = _enumeration_layer(model)
    if fast and layer == "hidden":
        return model_expectations_one_pass(model)
    m = model.n_hidden if layer == "hidden" else model.n_visible
    log_z = exact_log_partition(model, batch)
    B = get_backend()
    e_v = B.zeros((model.n_visible,), model.dtype_name)
    e_h = B.zeros((model.n_hidden,), model.dtype_name)
    e_vh = B.zeros((model.n_visible, model.n_hidden), model.dtype_name)
    # $\mathbb{E}[\cdot] = \sum_s P(s)\, \mathbb{E}[\cdot \mid s]$, $P(s) = \exp(\log p^*(s) - \log Z)$
    for a, z in _chunks(m, batch):
        S = binary_states(a, z, m, model.dtype_name)
        p = xp.exp(_log_unnormalised(model, S, layer) - log_z)                # P(state), (n_states,)
        if layer == "hidden":
            pv = sigmoid(S @ W.T + b)                                          # E[v | h], (n_states, n_visible)
            e_h = e_h + p @ S
            e_v = e_v + p @ pv
            e_vh = e_vh + (pv * xp.reshape(p, (-1, 1))).T @ S
        else:
            ph = sigmoid(S @ W + c)                                            # E[h | v], (n_states, n_hidden)
            e_v = e_v + p @ S
            e_h = e_h + p @ ph
            e_vh = e_vh + (S * xp.reshape(p, (-1, 1))).T @ ph
    return {"v": e_v, "h": e_h, "vh": e_vh, "log_z": log_z}


def model_expectations_one_pass(model, block: int = 2**10) -> dict:
    """The twin of :func:`model_expectations` (hidden layer enumerated) in one pass over blocks of states h.

    Each state h has log p*(h) = c.h + sum_i softplus(a_i), a = b + W h, and E[v | h] = sigmoid(a). Each block
    computes a once, softplus(a) and sigmoid(a) from one exp(-|a|), and its sums weighted by exp(log p*(h) - m)
    with the block's own maximum m; the blocks are then rescaled to the common maximum (the log-sum-exp trick,
    per block). NumPy runs the blocks on every core (``refvae.fast.map_blocks``). Returns what the twin returns.
    """
    check_finite_params(model.params, "the RBM")
    B = get_backend()
    xp = B.xp
    W, b, c = model.params["W"], model.params["b"], model.params["c"]

    def block_sums(start, stop):
        S = binary_states(start, stop, model.n_hidden, model.dtype_name)   # (m, n_hidden)
        a = S @ W.T + b                                                     # (m, n_visible)
        e = xp.exp(-xp.abs(a))                                              # in (0, 1]: no overflow
        softplus_a = xp.maximum(a, 0.0) + xp.log1p(e)
        pv = xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))              # sigmoid(a) from the same e
        log_p = S @ c + xp.sum(softplus_a, axis=1)                          # log p*(h), (m,)
        m = xp.max(log_p)
        w = xp.exp(log_p - m)                                               # (m,), largest 1
        return m, xp.sum(w), w @ S, w @ pv, (pv * xp.reshape(w, (-1, 1))).T @ S

    parts = map_blocks(B, block_sums, 2 ** model.n_hidden, block)
    m_all = xp.max(xp.stack([p[0] for p in parts]))
    scales = [xp.exp(p[0] - m_all) for p in parts]
    total = sum(s * p[1] for s, p in zip(scales, parts))
    e_h = sum(s * p[2] for s, p in zip(scales, parts)) / total
    e_v = sum(s * p[3] for s, p in zip(scales, parts)) / total
    e_vh = sum(s * p[4] for s, p in zip(scales, parts)) / total
    return {"v": e_v, "h": e_h, "vh": e_vh, "log_z": float(m_all + xp.log(total))}


def exact_nll_grads(model, V) -> dict:
    """The exact gradient of the mean negative log-likelihood of V: dF/dtheta averaged over V minus E_model[dF/dtheta]."""
    V = model.validate_data(V, "V")
    data = model.free_energy_grads(V)                                          # mean dF/dtheta over the data
    e = model_expectations(model)
    return {"W": data["W"] + e["vh"], "b": data["b"] + e["v"], "c": data["c"] + e["h"]}


def ais_betas(n: int = 14500):
    r"""$n$ inverse temperatures, strictly increasing from exactly 0 to exactly 1: a host list of floats.

    Salakhutdinov & Murray's schedule scaled to $n$ temperatures: 500/14500 of them uniform on $[0, 0.5)$,
    4000/14500 on $[0.5, 0.9)$, the rest on $[0.9, 1]$ (the default $n = 14500$ is their schedule: 500, 4000 and
    10000). Each segment gets at least one temperature and the last at least two, which needs $n \ge 4$; below
    that the schedule is uniform: $n = 2$ gives $[0, 1]$ (plain importance sampling from the base model) and
    $n = 3$ gives $[0, 0.5, 1]$.

    Raises
    ------
    ValueError
        If $n < 2$: AIS needs at least the two end points, $\beta = 0$ (the base model) and $\beta = 1$ (the RBM).
    """
    if isinstance(n, bool) or not hasattr(n, "__index__") or int(n) < 2:
        raise ValueError(f"AIS needs at least 2 temperatures (beta = 0 and beta = 1): the number of temperatures "
                         f"must be an integer >= 2, got {n!r}")
    n = int(n)
    if n < 4:
        return [i / (n - 1) for i in range(n)]                                   # [0, 1] or [0, 0.5, 1]
    n1, n2 = max(1, round(n * 500 / 14500)), max(1, round(n * 4000 / 14500))
    n3 = max(1, n - n1 - n2)
    seg = lambda lo, hi, k, end: [lo + (hi - lo) * i / (k - (1 if end else 0) or 1) for i in range(k)]  # noqa: E731
    return seg(0.0, 0.5, n1, False) + seg(0.5, 0.9, n2, False) + seg(0.9, 1.0, n3, True)


class AISWarning(UserWarning):
    """An AIS estimate whose error bar cannot be trusted (too few effective chains, or no lower bound)."""


@dataclass(frozen=True)
class AISEstimate:
    """An AIS estimate of log Z with what it can and cannot promise.

    ``log_z`` is log Z_A + log mean(w) over the M chains. ``lower`` and ``upper`` are log(mean(w) -+ 3 sd(w)/sqrt(M))
    + log Z_A: a 3-standard-error band of the mean weight, from the weights' own spread. It is only as good as that
    spread: with heavy-tailed weights (a few chains dominating) the sample sd underestimates the true one, and the
    band can be narrow and wrong. ``ess`` = (sum w)^2 / sum w^2, the effective number of chains, measures how many
    chains carry the estimate. The estimate is called trustworthy when the lower bound exists (3 sd(w)/sqrt(M) <
    mean(w)) and ess >= ``ESS_FRACTION`` * M; otherwise ``ais_log_partition`` warns (:class:`AISWarning`). Even a
    trustworthy estimate is a stochastic lower bound on log Z in expectation (Jensen), never an upper bound.

    Unpacks and indexes as the 3-tuple ``(log_z, lower, upper)``.
    """

    log_z: float
    lower: float
    upper: float
    ess: float
    n_chains: int
    temperatures: int

    @property
    def trustworthy(self) -> bool:
        """A spread estimated from at least 2 chains, a lower bound, and ess >= ESS_FRACTION * M."""
        return self.n_chains >= 2 and math.isfinite(self.lower) and self.ess >= ESS_FRACTION * self.n_chains

    def __iter__(self):
        return iter((self.log_z, self.lower, self.upper))

    def __getitem__(self, i):
        return (self.log_z, self.lower, self.upper)[i]

    def __len__(self) -> int:
        return 3

    def describe(self) -> str:
        """One line: the estimate, its band (or why there is none) and the effective number of chains."""
        if self.n_chains < 2:
            band = "[no band: one chain has no spread to estimate]"
        elif math.isfinite(self.lower):
            band = f"[{self.lower:.2f}, {self.upper:.2f}]"
        else:
            band = f"[no lower bound: 3 sd(w)/sqrt(M) >= mean(w); upper {self.upper:.2f}]"
        text = f"log Z = {self.log_z:.2f} {band}, {self.ess:.1f} effective chains of {self.n_chains}"
        return text if self.trustworthy else text + " (NOT TRUSTWORTHY: more chains or temperatures needed)"


#: An AIS estimate is trusted only when at least this fraction of its chains is effective (ESS / M).
ESS_FRACTION = 0.1


def ais_schedule(betas) -> list:
    """The inverse temperatures of ``betas``: an int n gives :func:`ais_betas` (n), a sequence is checked to increase
    strictly from exactly 0 to exactly 1. A host list of floats."""
    schedule = ais_betas(betas) if isinstance(betas, int) else [float(x) for x in betas]
    if len(schedule) < 2 or schedule[0] != 0.0 or schedule[-1] != 1.0 \
            or any(not b_next > b_prev for b_prev, b_next in zip(schedule, schedule[1:])):
        raise ValueError("betas must increase strictly from 0 to 1 (or be the number of temperatures, an integer "
                         ">= 2): pass betas=14500 for Salakhutdinov & Murray's schedule")
    return schedule


def base_rate_biases(model, data=None):
    """The base model's visible biases $b_A$ (n_visible,): the log-odds of the data's pixel means, clipped to
    $[10^{-3}, 1 - 10^{-3}]$ (Salakhutdinov & Murray's base-rate model); zeros (a uniform base) without data."""
    xp = model.xp
    if data is None:
        return get_backend().zeros((model.n_visible,), model.dtype_name)
    # $b_{A,i} = \log \bar v_i - \log(1 - \bar v_i)$, $\bar v_i$ the mean of pixel $i$, clipped
    return clipped_logit(xp.mean(model.validate_data(data, "data"), axis=0), 1e-3)


def ais_log_partition(model, n_chains: int = 100, betas=14500, seed: int = 0, data=None, return_bounds=False,
                      progress=False, rng=None):
    r"""log Z of the RBM by annealed importance sampling from a base-rate model.

    Parameters
    ----------
    n_chains : int
        Independent AIS runs $M$.
    betas : int or sequence of float
        The number of temperatures (Salakhutdinov & Murray's schedule, see :func:`ais_betas`) or the
        inverse temperatures themselves, increasing from 0 to 1.
    seed : int
        Seeds the generator of the chains when ``rng`` is not given.
    data : array (n, n_visible), optional
        Data whose pixel means set the base model's visible biases (log-odds, clipped); a uniform base
        ($b_A = 0$) without it. A base close to the data makes the estimate far more accurate.
    return_bounds : bool
        Return an :class:`AISEstimate` (bounds $\log(\operatorname{mean}(w) \mp 3 \operatorname{sd}(w) / \sqrt{M})
        + \log Z_A$, effective number of chains; it unpacks as ``(log_z, lower, upper)``) instead of the float.
        Either way an estimate that cannot be trusted raises an :class:`AISWarning`.
    progress : bool
        Show a progress bar over the temperatures.
    rng : refvae.backend.Generator, optional
        The generator of the chains (default: one seeded by ``seed``).

    Returns
    -------
    float, or AISEstimate
    """
    check_finite_params(model.params, "the RBM")
    B = get_backend()
    xp = model.xp
    M = check_positive_int(n_chains, "n_chains")
    schedule = ais_schedule(betas)
    b_a = base_rate_biases(model, data)
    # $\log Z_A = \sum_i \operatorname{softplus}(b_{A,i}) + n_\text{hidden} \log 2$
    log_z_a = float(xp.sum(softplus(b_a))) + model.n_hidden * math.log(2.0)
    rng = B.rng(seed) if rng is None else rng
    log_w = ais_log_weights(model, schedule, b_a, M, rng, progress)
    estimate = ais_estimate(log_w, log_z_a, len(schedule))
    if not estimate.trustworthy:
        warnings.warn(AISWarning(f"AIS estimate not trustworthy: {estimate.describe()}. Use more chains "
                                 "(n_chains) or temperatures (betas), or the exact log Z for a small model"),
                      stacklevel=3)
    return estimate if return_bounds else estimate.log_z


def annealing_increment(base_term, model_term, a, beta_from, beta_to):
    r"""$\log p^*_{\beta_\text{to}}(v) - \log p^*_{\beta_\text{from}}(v)$, (M,), from ``base_term`` $= v \cdot b_A$,
    ``model_term`` $= v \cdot b$ (M,) and $a = c + v W$ (M, n_hidden):

    .. math::

        (\beta_\text{from} - \beta_\text{to})\, b_A \cdot v + (\beta_\text{to} - \beta_\text{from})\, b \cdot v
        + \sum_j [\operatorname{softplus}(\beta_\text{to} a_j) - \operatorname{softplus}(\beta_\text{from} a_j)]

    AIS adds it going up the temperatures; RAISE (rbm/reverse_annealing.py) going down."""
    xp = get_backend().xp
    return (beta_from - beta_to) * base_term + (beta_to - beta_from) * model_term \
        + xp.sum(softplus(beta_to * a) - softplus(beta_from * a), axis=1)


def ais_log_weights(model, schedule, b_a, n_chains, rng, progress=False):
    r"""The AIS weight loop: $\log w$ of ``n_chains`` chains over the inverse temperatures ``schedule``, (M,) float64.

    Chains start at exact samples of the base model A (visible biases $b_A$, (n_visible,)). At each $\beta_k$:

    .. math::

        \log w \leftarrow \log w + \log p^*_k(v) - \log p^*_{k-1}(v),

        \log p^*_\beta(v) = (1 - \beta)\, b_A \cdot v + \beta\, b \cdot v
        + \sum_j \operatorname{softplus}(\beta (c_j + (v W)_j))

    then $v$ moves by one Gibbs sweep at $\beta_k$, $h \sim P_k(h \mid v) = \sigma(\beta (c + v W))$,
    $v \sim P_k(v \mid h) = \sigma((1 - \beta) b_A + \beta (b + h W^\top))$; none after the last, $\beta = 1$.
    """
    B = get_backend()
    xp = model.xp
    W, b, c = model.params["W"], model.params["b"], model.params["c"]
    # $v \sim P_A(v) = \prod_i \sigma(b_{A,i})^{v_i} (1 - \sigma(b_{A,i}))^{1 - v_i}$, exactly
    v = rng.bernoulli(B.zeros((n_chains, model.n_visible), model.dtype_name) + sigmoid(b_a))
    log_w = B.zeros((n_chains,), "float64")
    base_term, model_term = v @ b_a, v @ b                                               # (M,)
    last = len(schedule) - 1
    steps = range(1, last + 1)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc=f"AIS ({n_chains} chains)", unit="temperature", leave=False, mininterval=0.5)
    for k in steps:
        beta_prev, beta = schedule[k - 1], schedule[k]
        a = v @ W + c                                                                    # (M, n_hidden)
        # $\log w \leftarrow \log w + \log p^*_k(v) - \log p^*_{k-1}(v)$
        log_w = log_w + xp.astype(annealing_increment(base_term, model_term, a, beta_prev, beta), xp.float64)
        if k == last:                  # beta = 1: the weights are complete; a sweep at B would be unused
            break
        h = rng.bernoulli(sigmoid(beta * a))                                             # Gibbs sweep at beta
        v = rng.bernoulli(sigmoid((1.0 - beta) * b_a + beta * (h @ W.T + b)))
        base_term, model_term = v @ b_a, v @ b
    return log_w


def ais_estimate(log_w, log_z_a: float, temperatures: int) -> AISEstimate:
    r"""The estimate from the AIS log-weights $\log w$ (M,): $\log Z_B \approx \log Z_A + \log \operatorname{mean}(w)$,
    the band $\log(\operatorname{mean}(w) \mp 3 \operatorname{sd}(w) / \sqrt{M}) + \log Z_A$ and the effective number
    of chains $(\sum w)^2 / \sum w^2$."""
    xp = get_backend().xp
    M = log_w.shape[0]
    # $\log Z_B \approx \log Z_A + \log \operatorname{mean}_\text{chains} \exp(\log w)$
    log_z = log_z_a + (float(logsumexp(log_w, axis=0)) - math.log(M))
    shift = float(xp.max(log_w))
    r = xp.exp(log_w - shift)                                                            # w / max w
    mean = float(xp.mean(r))
    if M < 2:                                   # one chain: its spread cannot be estimated, so there is no band
        return AISEstimate(log_z, -math.inf, math.inf, 1.0, M, temperatures)
    sd = math.sqrt(float(xp.sum((r - mean) ** 2)) / (M - 1))                             # sample sd of w / max w
    # $\log(\operatorname{mean}(w) \mp 3 \operatorname{sd}(w) / \sqrt{M}) + \log Z_A$
    half = 3.0 * sd / math.sqrt(M)
    lower = log_z_a + shift + math.log(mean - half) if mean - half > 0 else -math.inf
    upper = log_z_a + shift + math.log(mean + half)
    # $\mathrm{ESS} = (\sum w)^2 / \sum w^2$
    ess = float(xp.sum(r)) ** 2 / float(xp.sum(r * r))
    return AISEstimate(log_z, lower, upper, ess, M, temperatures)
