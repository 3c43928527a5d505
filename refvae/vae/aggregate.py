r"""The aggregate posterior of a Gaussian VAE: measure how far it is from the prior, explain it, act on it.

The aggregate posterior is the encoder's posterior averaged over the data,

.. math::

    q(z) = \langle q(z \mid x) \rangle_x
         = \frac{1}{n} \sum_i \mathcal{N}(z; \mu(x_i), \operatorname{diag} \sigma^2(x_i)).

A VAE is trained as if its latent marginal were the prior $p(z) = \mathcal{N}(0, I)$; when training succeeds $q(z)$
approximates $p(z)$. Its moments follow from the law of total variance (per dimension $d$; the variance is the
within-$x$ noise plus the between-$x$ spread):

.. math::

    \text{mean}_d = \langle \mu_d(x) \rangle

    \text{var}_d = \langle \sigma_d^2(x) \rangle + \operatorname{Var}_x[\mu_d(x)]

    \text{cov} = \langle \operatorname{diag} \sigma^2(x) \rangle + \operatorname{Cov}_x[\mu(x)]

:func:`aggregate_kl` estimates $\operatorname{KL}(q(z) \| p(z))$ of the mixture itself, the term the ELBO pays for
the mismatch (Hoffman & Johnson 2016); the moment-matched Gaussian's KL is a lower bound on it.

:func:`prior_mismatch` reports, per dimension, $\operatorname{KL}(\mathcal{N}(\text{mean}_d, \text{var}_d) \|
\mathcal{N}(0, 1))$ and whether the unit is active ($\operatorname{Var}_x[\mu_d] > 0.01$, Burda et al. 2015), with
plain-language findings.

:func:`aggregate_posterior` measures it once and returns the measurement, an :class:`AggregatePosterior` (moments,
covariance, the n components, counts); it leaves the model unchanged. :func:`prior_mismatch`, :func:`aggregate_kl`,
:func:`align_to_prior` and ``GaussianVAE.sample(n, source=..., aggregate=...)`` take that value::

    agg = refvae.aggregate_posterior(model, X)          # X: the training data
    refvae.prior_mismatch(agg); refvae.aggregate_kl(agg); refvae.align_to_prior(model, agg)
    model.sample(64, source="aggregate", aggregate=agg)

Because every distribution involved is a diagonal Gaussian, a per-dimension affine change of the latent
variable $z' = (z - m) / s$ can be absorbed into the encoder's mean and log-variance heads and the decoder's
first layer without changing what the decoder computes (:func:`align_to_prior`); the same trick folds a
learned Gaussian prior into a standard one (:func:`absorb_prior`). See docs/aggregate-posterior.md.

References
----------
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (active units).
M. D. Hoffman, M. J. Johnson, "ELBO surgery: yet another way to carve up the variational evidence lower
bound", NIPS 2016 Workshop on Advances in Approximate Bayesian Inference (the aggregate posterior).
J. M. Tomczak, M. Welling, "VAE with a VampPrior", AISTATS 2018 (the optimal prior is the aggregate posterior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..backend import get_backend
from ..numerics import logsumexp
from ..validation import DataError

__all__ = ["ACTIVE_THRESHOLD", "AGGREGATE_SOURCES", "AggregateKL", "AggregatePosterior", "PriorMismatch",
           "absorb_prior", "aggregate_kl", "aggregate_posterior", "align_to_prior", "draw_from_mixture",
           "prior_mismatch"]

AGGREGATE_SOURCES = ("aggregate", "aggregate-full", "aggregate-mixture")   # AggregatePosterior.draw's sources

ACTIVE_THRESHOLD = 0.01      # Var_x[mu_d(x)] above this: the unit is active (Burda et al. 2015)
COLLAPSED_POSTERIOR_VAR = 0.9  # inactive and <sigma^2> above this: q(z_d|x) ~ p(z_d) for every x
DISPERSION_RATIO = 1.5       # aggregate variance above 1.5 (or below 1/1.5): over- (under-) dispersed
MEAN_OFFSET = 0.5            # |aggregate mean| above this many prior standard deviations: shifted
CORRELATION = 0.5            # |correlation| above this between active dimensions: strongly correlated


def _check_model(model):
    if not (hasattr(model, "encode") and hasattr(model, "z_dim")):
        raise TypeError(f"the aggregate posterior needs a model with a Gaussian encoder (encode(x) -> (mu, logvar)), "
                        f"got {type(model).__name__}")


@dataclass(frozen=True, eq=False)
class AggregatePosterior:
    """The aggregate posterior q(z) = (1/n) sum_i N(z; mu_i, diag exp(logvar_i)) over n examples, as measured by
    :func:`aggregate_posterior`. Moments by the law of total variance; host float64 arrays except the components.

    Attributes
    ----------
    mean : (z_dim,)
        <mu(x)>.
    var : (z_dim,)
        <sigma^2(x)> + Var_x[mu(x)] (``posterior_var + mean_spread``).
    cov : (z_dim, z_dim)
        <diag sigma^2(x)> + Cov_x[mu(x)].
    posterior_var, mean_spread : (z_dim,)
        <sigma^2(x)> and Var_x[mu(x)] (population variances).
    mu, logvar : device arrays (n, z_dim), the model's dtype
        The encoder's outputs for every example: the mixture's components.
    n : int
        The number of examples.
    prior : str
        The prior of the model measured ("standard" or "learned").
    """

    mean: Any
    var: Any
    cov: Any
    posterior_var: Any
    mean_spread: Any
    mu: Any
    logvar: Any
    n: int
    prior: str = "standard"

    @property
    def z_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def active(self):
        """Active units, Var_x[mu_d(x)] > ACTIVE_THRESHOLD (Burda et al. 2015), a host bool array (z_dim,)."""
        return self.mean_spread > ACTIVE_THRESHOLD

    def draw(self, n: int, rng, source: str = "aggregate", dtype=None):
        """n draws z (n, z_dim) from ``source``, with the generator ``rng``, in ``dtype`` (default the components'):

        - ``"aggregate"``: z ~ N(mean, diag var), the moment-matched diagonal Gaussian;
        - ``"aggregate-full"``: z ~ N(mean, cov), with its full covariance cov = L L^T (Cholesky, in float64);
        - ``"aggregate-mixture"``: the exact aggregate (1/n) sum_i q(z|x_i): pick an example i uniformly, then
          z ~ q(z|x_i) = N(mu_i, diag sigma_i^2) (:func:`draw_from_mixture`).
        """
        B = get_backend()
        xp = B.xp
        if source not in AGGREGATE_SOURCES:
            raise ValueError(f"source must be one of {', '.join(map(repr, AGGREGATE_SOURCES))}, got {source!r}")
        if source == "aggregate-mixture":                   # x_i uniformly at random, then z ~ q(z|x_i)
            return draw_from_mixture(rng, self.mu, self.logvar, n)
        dtype = B.dtype_name(self.mu.dtype) if dtype is None else dtype
        eps = rng.normal((n, self.z_dim), dtype)
        m = B.asarray(self.mean, dtype=dtype)
        if source == "aggregate":
            return m + xp.sqrt(B.asarray(self.var, dtype=dtype)) * eps              # N(m, diag var)
        # C = <diag sigma^2> + Cov_x[mu] is positive definite (every sigma^2 > 0): C = L L^T, in float64
        L = xp.linalg.cholesky(B.asarray(self.cov, dtype="float64"))
        return m + eps @ xp.astype(L, eps.dtype).T                                  # N(m, L L^T)


def aggregate_posterior(model, X, batch_size: int = 1000) -> AggregatePosterior:
    r"""The aggregate posterior $\langle q(z \mid x) \rangle$ over X, measured in one pass; the model is left unchanged.

    .. math::

        \text{mean} = \langle \mu(x) \rangle

        \text{var} = \langle \sigma^2(x) \rangle + \operatorname{Var}_x[\mu(x)]

        \text{cov} = \langle \operatorname{diag} \sigma^2(x) \rangle + \operatorname{Cov}_x[\mu(x)]

    (law of total variance; population variances)

    The batches' means and centred sums of squares are merged with Chan et al.'s pairwise update in
    float64 on the device, so the result is sound for large X (no $\mathbb{E}[\mu^2] - \mathbb{E}[\mu]^2$
    cancellation).

    Parameters
    ----------
    model : GaussianVAE (or anything with ``encode(x) -> (mu, logvar)``, ``z_dim`` and ``validate_data``)
    X : array (n, x_dim), n >= 2
    batch_size : int

    Returns
    -------
    AggregatePosterior
        Pass it to :func:`prior_mismatch`, :func:`aggregate_kl`, :func:`align_to_prior` and
        ``model.sample(n, source=..., aggregate=...)``.
    """
    B = get_backend()
    s = _moments(model, X, batch_size)
    host = {k: B.to_numpy(s[k]) for k in ("mean", "var", "cov", "post_var", "spread")}
    return AggregatePosterior(mean=host["mean"], var=host["var"], cov=host["cov"], posterior_var=host["post_var"],
                              mean_spread=host["spread"], mu=s["components"][0], logvar=s["components"][1], n=s["n"],
                              prior=getattr(model, "prior", "standard"))


def _require_aggregate(value, what):
    """``value`` if it is an :class:`AggregatePosterior`; else a TypeError that shows the call to make."""
    if not isinstance(value, AggregatePosterior):
        raise TypeError(f"{what} takes the aggregate posterior, not a {type(value).__name__}: "
                        f"{what}(refvae.aggregate_posterior(model, X), ...)")
    if value.prior != "standard":
        raise ValueError(f"{what} compares with N(0, I): measure the aggregate posterior of "
                         "refvae.absorb_prior(model) for a model with a learned prior")
    return value


def _moments(model, X, batch_size):
    r"""mean $\langle \mu \rangle$, var, cov, mean posterior variance $\langle \sigma^2 \rangle$ and spread of the
    means $\operatorname{Var}_x[\mu]$ on the device, float64, the count n, and the encoder's (mu, logvar) for every
    row ("components"), (n, z_dim) each, in the model's dtype."""
    _check_model(model)
    B = get_backend()
    xp = B.xp
    X = model.validate_data(X)
    n = X.shape[0]
    if n < 2:
        raise DataError(f"the aggregate posterior needs at least two examples to measure the spread of the means; got {n}")
    f64 = xp.float64
    count = 0
    mean = B.zeros((model.z_dim,), "float64")            # running <mu>
    m2 = B.zeros((model.z_dim,), "float64")              # running sum of (mu - <mu>)^2
    c2 = B.zeros((model.z_dim, model.z_dim), "float64")  # running sum of (mu - <mu>)(mu - <mu>)^T
    post_var_sum = B.zeros((model.z_dim,), "float64")    # running sum of sigma^2
    mus, logvars = [], []
    for i in range(0, n, batch_size):
        mu, logvar = model.encode(X[i:min(i + batch_size, n), :])
        mus.append(mu)
        logvars.append(logvar)
        mu, logvar = xp.astype(mu, f64), xp.astype(logvar, f64)
        nb = mu.shape[0]
        mean_b = xp.mean(mu, axis=0)
        centred = mu - mean_b
        delta = mean_b - mean
        total = count + nb
        # Chan, Golub & LeVeque (1979): merge (count, mean, m2) with the batch's (nb, mean_b, m2_b); with
        # $\delta = \bar\mu_b - \bar\mu$, $n$ = count and $n' = n + n_b$:
        # $$M_2 \leftarrow M_2 + M_{2,b} + \delta^2 \, n n_b / n'$$
        # $$C_2 \leftarrow C_2 + C_{2,b} + \delta \delta^\top \, n n_b / n'$$
        # $$\bar\mu \leftarrow \bar\mu + \delta \, n_b / n'$$
        m2 = m2 + xp.sum(centred * centred, axis=0) + delta * delta * (count * nb / total)
        c2 = c2 + centred.T @ centred + xp.reshape(delta, (-1, 1)) * xp.reshape(delta, (1, -1)) * (count * nb / total)
        mean = mean + delta * (nb / total)
        post_var_sum = post_var_sum + xp.sum(xp.exp(logvar), axis=0)
        count = total
    # $\operatorname{Var}_x[\mu] = M_2 / n$, then the law of total variance:
    # $\text{var} = \langle \sigma^2 \rangle + \operatorname{Var}_x[\mu]$,
    # $\text{cov} = \langle \operatorname{diag} \sigma^2 \rangle + C_2 / n$
    spread = m2 / count                                  # Var_x[mu(x)]
    post_var = post_var_sum / count                      # <sigma^2(x)>
    return {"mean": mean, "post_var": post_var, "spread": spread, "n": count,
            "var": post_var + spread,                    # law of total variance
            "cov": c2 / count + _diag(xp, post_var),
            "components": tuple(xp.concat(parts, axis=0) if len(parts) > 1 else parts[0] for parts in (mus, logvars))}


class AggregateKL(NamedTuple):
    """KL(q(z) || N(0, I)) of the aggregate posterior in nats, with the Monte Carlo standard error."""

    kl: float
    standard_error: float
    samples: int


def aggregate_kl(aggregate: AggregatePosterior, samples: int = 2000, seed=0, batch_size: int = 1000,
                 rng=None) -> AggregateKL:
    """KL(q(z) || N(0, I)) of the exact aggregate posterior q(z) = (1/n) sum_i N(z; mu_i, diag s_i) measured by
    :func:`aggregate_posterior` (its components, over the examples it was measured on).

        KL = E_{z ~ q(z)} [log q(z) - log p(z)],    log q(z) = logsumexp_i log N(z; mu_i, diag s_i) - log n

    Each z is drawn by picking an example i uniformly and then z ~ q(z | x_i); log q(z) sums over all n
    components exactly, so the only error is the Monte Carlo error over the ``samples`` draws of z, returned
    as the standard error. This is the "marginal KL" of Hoffman & Johnson (2016): the part of the average KL
    term of the ELBO that the mismatch costs. It is never below the moment-matched Gaussian's KL that
    :func:`prior_mismatch` reports (``kl_full``): among distributions with the same mean and covariance the
    Gaussian has the largest entropy, and E_q[-log p(z)] depends on those moments only. The two are equal
    when q(z) is Gaussian.

    Read it with the data's size in mind: q(z) here is the mixture over the n given examples, not over the
    population they come from. Since <KL(q(z|x) || p(z))> = I(i; z) + KL(q(z) || p(z)) and the mutual information
    between the example's index and z is at most log n, this KL is at least <KL(q(z|x) || p(z))> - log n. With
    narrow posteriors it is therefore large even when the population's aggregate is exactly the prior (a linear
    VAE at its optimum on mnist-10k: about 31 nats, with a moment-matched KL of 0).

    Cost: samples x n x z_dim multiply-adds, in blocks of ``batch_size`` draws. The draws come from ``rng``, else a
    generator seeded with ``seed``.
    """
    _require_aggregate(aggregate, "aggregate_kl")
    if samples < 2:
        raise ValueError(f"aggregate_kl needs at least 2 samples for a standard error; got {samples}")
    B = get_backend()
    xp = B.xp
    n = aggregate.n
    mu, logvar = xp.astype(aggregate.mu, xp.float64), xp.astype(aggregate.logvar, xp.float64)     # (n, z_dim)
    inv_var = xp.exp(-logvar)                                                 # 1 / s_i, (n, z_dim)
    z_dim = mu.shape[1]
    log_2pi = math.log(2 * math.pi)
    # log N(z; mu_i, diag s_i) = -1/2 sum_k [log 2 pi + log s_ik + (z_k - mu_ik)^2 / s_ik], with the square
    # expanded so that a block of draws against all n components is three matrix products:
    #   sum_k (z_k - mu_ik)^2 / s_ik = z^2 . (1/s_i) - 2 z . (mu_i / s_i) + sum_k mu_ik^2 / s_ik
    const = -0.5 * (z_dim * log_2pi + xp.sum(logvar, axis=1) + xp.sum(mu * mu * inv_var, axis=1))    # (n,)
    mu_over_var = mu * inv_var
    rng = B.rng(seed) if rng is None else rng
    z_all = draw_from_mixture(rng, mu, logvar, samples)           # all draws first: independent of batch_size
    values = []
    for start in range(0, samples, batch_size):
        z = z_all[start:min(start + batch_size, samples), :]                                # (m, z_dim)
        log_components = const - 0.5 * ((z * z) @ inv_var.T) + z @ mu_over_var.T          # (m, n)
        log_q = logsumexp(log_components, axis=1) - math.log(n)
        log_p = -0.5 * (z_dim * log_2pi + xp.sum(z * z, axis=1))
        values.append(log_q - log_p)
    values = xp.concat(values, axis=0)
    kl = float(xp.mean(values))
    # the sample standard deviation, divisor m - 1 (written out: CuPy's std takes ddof=, the array API correction=)
    sd = math.sqrt(float(xp.sum((values - kl) ** 2)) / max(samples - 1, 1))
    return AggregateKL(kl, sd / math.sqrt(samples), int(samples))


def draw_from_mixture(rng, mu, logvar, n: int):
    """n draws z (n, z_dim) from the mixture (1/N) sum_i N(mu_i, diag exp(logvar_i)) of N components (N, z_dim):
    a component i uniformly at random, then z = mu_i + exp(logvar_i / 2) eps, in the components' dtype."""
    xp = get_backend().xp
    n_components = mu.shape[0]
    pick = xp.astype(xp.floor(rng.uniform((n,), "float64") * n_components), xp.int64)
    pick = xp.clip(pick, 0, n_components - 1)                       # u < 1, but rounding
    eps = rng.normal((n, mu.shape[1]), get_backend().dtype_name(mu.dtype))
    return xp.take(mu, pick, axis=0) + xp.exp(0.5 * xp.take(logvar, pick, axis=0)) * eps


def _diag(xp, v):
    """The diagonal matrix of a vector v (d,) -> (d, d)."""
    return xp.reshape(v, (-1, 1)) * get_backend().eye(v.shape[0], "float64")


def _kl_diag_to_standard(xp, mean, var):
    """KL(N(mean, var) || N(0, 1)) per dimension: (mean^2 + var - 1 - log var) / 2."""
    return 0.5 * (mean * mean + var - 1.0 - xp.log(var))


def _kl_full_to_standard(xp, mean, cov):
    """KL(N(mean, cov) || N(0, I)) = (tr cov + mean.mean - d - log det cov) / 2."""
    sign, logdet = xp.linalg.slogdet(cov)
    if float(sign) <= 0:
        return math.inf
    trace = xp.sum(cov * get_backend().eye(cov.shape[0], "float64"))     # tr cov (CuPy has no linalg.diagonal)
    return 0.5 * float(trace + xp.sum(mean * mean) - mean.shape[0] - logdet)


@dataclass
class PriorMismatch:
    """How far the aggregate posterior is from the prior N(0, I): per dimension, in total, in words.

    Per-dimension arrays have shape (z_dim,). ``kl`` is KL(N(mean_d, var_d) || N(0, 1)); ``kl_diag`` its
    sum (the moment-matched diagonal Gaussian's KL to the prior) and ``kl_full`` that of the
    moment-matched full-covariance Gaussian (>= kl_diag minus the dimensions' correlation information).
    """

    mean: Any
    var: Any
    kl: Any
    posterior_var: Any
    mean_spread: Any
    active: Any
    correlation: Any
    kl_diag: float
    kl_full: float
    n: int
    findings: list = field(default_factory=list)

    @property
    def n_active(self) -> int:
        return int(self.active.sum())

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "kl": self.kl.tolist(),
                "posterior_var": self.posterior_var.tolist(), "mean_spread": self.mean_spread.tolist(),
                "active": self.active.tolist(), "kl_diag": self.kl_diag, "kl_full": self.kl_full,
                "n_active": self.n_active, "n": self.n, "findings": list(self.findings)}

    def __str__(self) -> str:
        lines = [f"Aggregate posterior vs prior N(0, I) over {self.n} examples",
                 f"{'dim':>4} {'mean':>8} {'var':>8} {'KL':>8} {'<s^2>':>8} {'Var[mu]':>9} active"]
        for d in range(len(self.mean)):
            lines.append(f"{d:>4} {self.mean[d]:>8.3f} {self.var[d]:>8.3f} {self.kl[d]:>8.4f} "
                         f"{self.posterior_var[d]:>8.3f} {self.mean_spread[d]:>9.4f} {'yes' if self.active[d] else 'no'}")
        lines.append(f"total KL: diagonal {self.kl_diag:.4f} nats, full covariance {self.kl_full:.4f} nats; "
                     f"{self.n_active} of {len(self.mean)} units active")
        lines += [f"- {f}" for f in self.findings]
        return "\n".join(lines)


def prior_mismatch(aggregate: AggregatePosterior) -> PriorMismatch:
    r"""Explain the mismatch between the aggregate posterior (measured by :func:`aggregate_posterior`) and the
    prior $\mathcal{N}(0, I)$.

    Returns a :class:`PriorMismatch` (printable as a table) with per-dimension moments, KLs, activity and
    findings: collapsed dimensions, over- or under-dispersed or shifted dimensions, strongly correlated
    dimensions, each with what it suggests.
    """
    _require_aggregate(aggregate, "prior_mismatch")
    B = get_backend()
    xp = B.xp
    mean, var, cov = (B.asarray(a, dtype="float64") for a in (aggregate.mean, aggregate.var, aggregate.cov))
    # per dimension, with $m$, $v$, $C$ the aggregate's mean, variance and covariance:
    # $\mathrm{KL}(\mathcal{N}(m_d, v_d) \| \mathcal{N}(0, 1)) = \tfrac{1}{2}(m_d^2 + v_d - 1 - \log v_d)$;
    # in full $\tfrac{1}{2}(\operatorname{tr} C + m^\top m - d - \log \det C)$; correlations $C_{ij} / \sqrt{v_i v_j}$
    kl = _kl_diag_to_standard(xp, mean, var)                     # (z_dim,)
    sd = xp.sqrt(var)
    corr = cov / (xp.reshape(sd, (-1, 1)) * xp.reshape(sd, (1, -1)))
    report = PriorMismatch(mean=aggregate.mean, var=aggregate.var, kl=B.to_numpy(kl),
                           posterior_var=aggregate.posterior_var, mean_spread=aggregate.mean_spread,
                           active=aggregate.active, correlation=B.to_numpy(corr), kl_diag=float(xp.sum(kl)),
                           kl_full=_kl_full_to_standard(xp, mean, cov), n=aggregate.n)
    report.findings = _findings(report)
    return report


def _dims(mask):
    return ", ".join(str(i) for i, flag in enumerate(mask.tolist()) if flag)


def _findings(r: PriorMismatch) -> list:
    out = []
    z_dim = len(r.mean)
    collapsed = ~r.active & (r.posterior_var > COLLAPSED_POSTERIOR_VAR)
    if r.n_active == 0:
        out.append("no latent dimension is used (all inactive): posterior collapse, the decoder ignores z; or "
                   "training failed (check the loss curve for NaNs, plateaus, a learning rate far off)")
    elif collapsed.any():
        out.append(f"collapsed dimensions {_dims(collapsed)}: q(z|x) equals the prior for every x, so these units "
                   f"carry no information; {r.n_active} of {z_dim} are used. Harmless, but the latent space is "
                   "larger than the data need (or the decoder is strong enough to ignore z)")
    odd_inactive = ~r.active & ~collapsed
    if odd_inactive.any():
        out.append(f"inactive but not collapsed dimensions {_dims(odd_inactive)}: the means barely move with x while "
                   "the posterior variance is far from 1, which costs KL for nothing; typical early in training")
    over = r.active & (r.var > DISPERSION_RATIO)
    if over.any():
        out.append(f"over-dispersed dimensions {_dims(over)} (aggregate variance > {DISPERSION_RATIO}): the encoder "
                   "spreads the data wider than the prior; early in training, or a learning rate too large. "
                   "align_to_prior rescales them without changing the decoder's function")
    under = r.active & (r.var < 1.0 / DISPERSION_RATIO)
    if under.any():
        out.append(f"under-dispersed dimensions {_dims(under)} (aggregate variance < {1 / DISPERSION_RATIO:.2f}): "
                   "parts of the prior are never visited by the data, so samples from the prior decode to "
                   "untrained regions; try sample(source='aggregate'), align_to_prior, or a larger/longer-"
                   "trained encoder")
    shifted = abs(r.mean) > MEAN_OFFSET
    if shifted.any():
        out.append(f"shifted dimensions {_dims(shifted)} (|aggregate mean| > {MEAN_OFFSET}): the aggregate is "
                   "off-centre; align_to_prior recentres it")
    active = r.active.tolist()
    pairs = [(i, j) for i in range(z_dim) for j in range(i + 1, z_dim)
             if active[i] and active[j] and abs(float(r.correlation[i, j])) > CORRELATION]
    if pairs:
        text = ", ".join(f"{i}-{j} ({float(r.correlation[i, j]):+.2f})" for i, j in pairs[:8])
        out.append(f"strongly correlated dimensions {text}: the aggregate is not axis-aligned, which a diagonal "
                   "prior cannot express; the latent space may be too small for the data's variability, or "
                   "training has not yet decorrelated the code")
    if not out:
        out.append(f"the aggregate posterior matches the prior well (total KL {r.kl_diag:.3f} nats, "
                   f"{r.n_active} of {z_dim} units active)")
    return out


# ------------------------------------------------------------------------------------------------
# Acting on it: per-dimension affine reparameterisations of the latent space
# ------------------------------------------------------------------------------------------------
def _shift_scale_latent(model, m, s):
    r"""In place: substitute $z = m + s \odot z'$ (per dimension, $s > 0$) so the model works in $z'$.

    encoder:

    .. math::

        \mu' = (\mu - m) / s \;\Rightarrow\; W_\mu' = W_\mu / s, \quad b_\mu' = (b_\mu - m) / s

        \log \sigma'^2 = \log \sigma^2 - 2 \log s \;\Rightarrow\; b_{\mathrm{lv}}' = b_{\mathrm{lv}} - 2 \log s

    decoder, for every linear layer that reads $z$:

    .. math::

        h = z W + b = z' (\operatorname{diag}(s) W) + (m W + b)

    With $\epsilon$ fixed, $z' = \mu' + \exp(\log \sigma'^2 / 2) \odot \epsilon = (z - m) / s$, so the decoder's
    output is unchanged.
    """
    B = get_backend()
    xp = B.xp
    dt = model.dtype_name
    m64, s64 = B.asarray(m, dtype="float64"), B.asarray(s, dtype="float64")
    m_d, s_d = xp.astype(m64, B.dtype(dt)), xp.astype(s64, B.dtype(dt))
    log_s2 = xp.astype(2.0 * xp.log(s64), B.dtype(dt))
    # the encoder's heads: $W_\mu \leftarrow W_\mu / s$, $b_\mu \leftarrow (b_\mu - m) / s$,
    # $b_{\mathrm{lv}} \leftarrow b_{\mathrm{lv}} - 2 \log s$
    p_mu, p_lv = model.enc_mu.params, model.enc_logvar.params
    p_mu["W"] = p_mu["W"] / s_d                                  # (h, z) / (z,)
    p_mu["b"] = (p_mu["b"] - m_d) / s_d
    p_lv["b"] = p_lv["b"] - log_s2
    # the decoder's layers that read $z$: $b \leftarrow b + m W$, $W \leftarrow \operatorname{diag}(s) W$
    readers = [model.decoder.linears[0]] if model.decoder.linears else list(model.dec_heads.values())
    for layer in readers:
        W, b = layer.params["W"], layer.params["b"]
        layer.params["b"] = b + _row_times(xp, m_d, W)              # b + m W: (out,)
        layer.params["W"] = xp.reshape(s_d, (-1, 1)) * W            # diag(s) W: (z, 1) * (z, out)
    return model


def _row_times(xp, v, W):
    """v @ W for a vector v (z,) and matrix W (z, out) -> (out,)."""
    return xp.reshape(xp.reshape(v, (1, -1)) @ W, (-1,))


def align_to_prior(model, aggregate: AggregatePosterior, inplace: bool = False):
    r"""A model whose aggregate posterior over X has mean 0 and variance 1 in every dimension, from ``aggregate``, the
    model's aggregate posterior over X (:func:`aggregate_posterior`).

    The per-dimension affine change $z' = (z - m) / s$, with $m$, $s^2$ the aggregate posterior's mean and
    variance, is absorbed into the encoder's mean and log-variance heads and the decoder's first layer
    (see :func:`_shift_scale_latent`). For every $x$ and every noise draw $\epsilon$ the decoder's output is
    unchanged, so the reconstruction term is unchanged; only the KL term changes, and on X it falls by
    exactly (the diagonal mismatch)

    .. math::

        \sum_d \operatorname{KL}(\mathcal{N}(m_d, s_d^2) \| \mathcal{N}(0, 1)),

    since $\langle \mu'^2 + \sigma'^2 \rangle = 1$ and $\langle \log \sigma'^2 \rangle = \langle \log \sigma^2 \rangle
    - \log s^2$ in every dimension.

    Why only a per-dimension map: $q(z \mid x)$ and $p(z)$ are diagonal Gaussians. A rotation (or any non-diagonal
    linear map) of $z$ would turn each diagonal $q(z \mid x)$ into a Gaussian with a full covariance, which the
    encoder's (mu, logvar) heads cannot represent; only shifts and per-axis scalings keep the family.
    Correlations in the aggregate therefore cannot be removed this way (the report's kl_full - kl_diag).

    Parameters
    ----------
    model : GaussianVAE with the standard prior
    aggregate : AggregatePosterior
        ``refvae.aggregate_posterior(model, X)``.
    inplace : bool
        Modify ``model`` itself (``fit(..., align=...)`` does) instead of returning a new model.

    Returns
    -------
    GaussianVAE
    """
    _check_model(model)
    if getattr(model, "prior", "standard") != "standard":
        raise ValueError("align_to_prior targets N(0, I): call refvae.absorb_prior(model) first for a learned prior")
    _require_aggregate(aggregate, "align_to_prior")
    if aggregate.z_dim != model.z_dim:
        raise ValueError(f"the aggregate posterior has {aggregate.z_dim} latent dimensions but the model has "
                         f"{model.z_dim}: measure it on this model")
    target = model if inplace else _copy_model(model)
    # $z' = (z - m) / s$ with $m$ the aggregate's mean and $s = \sqrt{\text{var}}$
    return _shift_scale_latent(target, aggregate.mean, aggregate.var ** 0.5)


def absorb_prior(model):
    """A standard-prior model equivalent to ``model`` with a learned prior N(m, diag exp(v)).

    z' = (z - m) / exp(v/2) maps the learned prior to N(0, I) and each q(z|x) to a diagonal Gaussian; the KL
    is invariant under the same invertible affine map of both arguments, and the decoder's output is
    unchanged, so the ELBO is the same for every x and every noise draw. A learned Gaussian prior is
    therefore redundant with the adjacent layers.
    """
    _check_model(model)
    if getattr(model, "prior", "standard") != "learned":
        raise ValueError(f"absorb_prior needs a model built with prior='learned'; this one has prior={model.prior!r}")
    B = get_backend()
    xp = B.xp
    m = xp.astype(model.learned_prior.params["mean"], xp.float64)
    s = xp.exp(0.5 * xp.astype(model.learned_prior.params["logvar"], xp.float64))
    config = dict(model.config)
    config.pop("prior")
    new = type(model)(**config)
    new.set_params({k: v for k, v in model.params.items() if not k.startswith("prior.")})
    return _shift_scale_latent(new, m, s)


def _copy_model(model):
    new = type(model)(**model.config)
    new.set_params(model.params)  # set_params copies
    return new
