"""Numerically stable building blocks, each with its derivative written beside it.

Every function works on arrays of any backend (NumPy, CuPy, array_api_strict): the namespace is
taken from the array itself (the array API's ``__array_namespace__``, through the backend module).

Stability rules used throughout (never ``log(sigmoid(x))`` or ``log(1 + exp(x))``):

    softplus(x)    = log(1 + e^x)  = max(x, 0) + log1p(e^{-|x|})
    log_sigmoid(x) = -softplus(-x)
    sigmoid(x)     = 1 / (1 + e^{-x})     for x >= 0,   e^x / (1 + e^x)   for x < 0
    logsumexp(a)   = m + log(sum(e^{a - m})),   m = max(a)

With logits of +-1e4 all of these stay finite in float32.

Functions of a whole example reduce over the last axis and return shape ``(batch,)``.

References
----------
Kingma & Welling (2014), "Auto-Encoding Variational Bayes", appendix B (Gaussian KL).
"""

from __future__ import annotations

import math

from .backend import namespace_of

__all__ = [
    "bernoulli_log_prob",
    "bernoulli_log_prob_grad",
    "bernoulli_nll_with_grad",
    "gaussian_log_prob",
    "gaussian_log_prob_grad",
    "clipped_logit",
    "kl_normal",
    "kl_normal_grad",
    "kl_standard_normal",
    "kl_standard_normal_grad",
    "log_sigmoid",
    "log_sigmoid_grad",
    "logsumexp",
    "logsumexp_grad",
    "namespace",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_tanh",
    "softplus",
    "softplus_grad",
]

LOG_2PI = math.log(2.0 * math.pi)


def namespace(x):
    """The array namespace of ``x`` (numpy, cupy or array_api_strict); see :func:`refvae.backend.namespace_of`."""
    return namespace_of(x)


# --------------------------------------------------------------------------------------------
# Element-wise functions.  f(x) and f'(x), same shape as x.
# --------------------------------------------------------------------------------------------
def softplus(x):
    r"""$\operatorname{softplus}(x) = \log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|})$, stable for any x."""
    xp = namespace(x)
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def softplus_grad(x):
    """d softplus / dx = sigmoid(x)."""
    return sigmoid(x)


def sigmoid(x):
    r"""$\sigma(x) = 1 / (1 + e^{-x})$, with no overflow: $e^{-|x|}$ is always <= 1."""
    xp = namespace(x)
    e = xp.exp(-xp.abs(x))  # in (0, 1]
    # $1 / (1 + e)$ for $x \ge 0$ and $e^x / (1 + e^x) = e / (1 + e)$ for $x < 0$: the numerator is $e^{\min(x, 0)}$
    # (exactly 1, or exactly e), which is cheaper than selecting between two quotients with ``where``.
    return xp.exp(xp.minimum(x, 0.0)) / (1.0 + e)


def sigmoid_tanh(x):
    """sigmoid(x) = (1 + tanh(x / 2)) / 2: the twin of :func:`sigmoid` in four passes over memory and one
    transcendental (against seven and two), with no overflow (tanh saturates), values in [0, 1].

    Equal to :func:`sigmoid` to absolute precision (tests: float64 to 1e-12), but near 0 it keeps no relative
    digits (in float32, sigmoid(-20) comes out 0): use it only where probabilities are drawn from or averaged,
    never where their log is taken. The RBM's Gibbs sampler and its phases' statistics use it."""
    xp = namespace(x)
    s = xp.tanh(0.5 * x)
    s *= 0.5
    s += 0.5
    return s


def sigmoid_grad(x):
    """d sigmoid / dx = sigmoid(x) (1 - sigmoid(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x)."""
    return -softplus(-x)


def log_sigmoid_grad(x):
    """d log sigmoid / dx = 1 - sigmoid(x) = sigmoid(-x)."""
    return sigmoid(-x)


def clipped_logit(p, eps):
    """log(p / (1 - p)) of probabilities p clipped to [eps, 1 - eps]: finite log-odds (biases set from the data's
    means, or a probability kept inside (0, 1))."""
    xp = namespace(p)
    p = xp.clip(p, eps, 1.0 - eps)
    return xp.log(p) - xp.log1p(-p)


# --------------------------------------------------------------------------------------------
# Reductions.
# --------------------------------------------------------------------------------------------
def logsumexp(a, axis=-1, keepdims=False):
    r"""$\log \sum_i e^{a_i} = m + \log \sum_i e^{a_i - m}$, $m = \max_i a_i$, along ``axis``; rows of all -inf give
    -inf."""
    xp = namespace(a)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))  # all -inf rows: shift by 0, result log(0) = -inf
    out = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=axis)


def logsumexp_grad(a, axis=-1):
    """d logsumexp / da = softmax(a) along ``axis``."""
    xp = namespace(a)
    return xp.exp(a - logsumexp(a, axis=axis, keepdims=True))


def bernoulli_log_prob(x, logits):
    r"""log p(x | logits) of independent Bernoullis, summed over the last axis.

    .. math::

        \log p(x \mid l) = \sum_j \big[x_j l_j - \operatorname{softplus}(l_j)\big]

    (minus the binary cross-entropy; x may be in [0, 1])

    Parameters
    ----------
    x : array (batch, d), values in [0, 1]
    logits : array (batch, d)

    Returns
    -------
    array (batch,)
    """
    xp = namespace(logits)
    return xp.sum(x * logits - softplus(logits), axis=-1)


def bernoulli_log_prob_grad(x, logits):
    r"""$\partial \log p / \partial l_j = x_j - \sigma(l_j)$, shape (batch, d)."""
    return x - sigmoid(logits)


def bernoulli_nll_with_grad(x, logits):
    r"""The fast twin of the two above, negated: (-log p(x | logits), d(-log p) / d logits) sharing $e = e^{-|l|}$.

    .. math::

        -\log p = \sum_j \big[\operatorname{softplus}(l_j) - x_j l_j\big], \qquad
        \operatorname{softplus}(l) = \max(l, 0) + \log(1 + e)

        \partial(-\log p) / \partial l = \sigma(l) - x, \qquad \sigma(l) = e^{\min(l, 0)} / (1 + e)

    ``-bernoulli_log_prob(x, l)`` and ``-bernoulli_log_prob_grad(x, l)`` compute e^{-|l|} twice; this once (the
    VAE's training step chooses between the two with ``fast``; tests hold them equal).

    Returns
    -------
    nll : array (batch,)
    grad : array (batch, d)
    """
    xp = namespace(logits)
    e = xp.exp(-xp.abs(logits))                                        # (batch, d), in (0, 1]
    nll = xp.sum(xp.maximum(logits, 0.0) + xp.log1p(e) - x * logits, axis=-1)
    sig = xp.exp(xp.minimum(logits, 0.0)) / (1.0 + e)                  # sigmoid(l), as in ``sigmoid``
    return nll, sig - x


def gaussian_log_prob(x, mean, logvar):
    r"""log N(x; mean, diag(exp(logvar))), summed over the last axis.

    .. math::

        \log p = -\tfrac{1}{2} \sum_j \big[\log 2\pi + v_j + (x_j - m_j)^2 e^{-v_j}\big]
        \qquad (m = \text{mean},\ v = \text{logvar})

    Parameters
    ----------
    x, mean, logvar : arrays (batch, d) (broadcastable)

    Returns
    -------
    array (batch,)
    """
    xp = namespace(logvar)
    return -0.5 * xp.sum(LOG_2PI + logvar + (x - mean) ** 2 * xp.exp(-logvar), axis=-1)


def gaussian_log_prob_grad(x, mean, logvar):
    r"""Derivatives of gaussian_log_prob: (d/d mean, d/d logvar), each of shape (batch, d).

    .. math::

        \partial \log p / \partial m_j = (x_j - m_j)\, e^{-v_j}

        \partial \log p / \partial v_j = -\tfrac{1}{2}\big(1 - (x_j - m_j)^2 e^{-v_j}\big)
    """
    xp = namespace(logvar)
    precision_diff = (x - mean) * xp.exp(-logvar)
    return precision_diff, -0.5 * (1.0 - (x - mean) * precision_diff)


def kl_standard_normal(mu, logvar):
    r"""KL( N(mu, diag(exp(logvar))) || N(0, I) ), summed over the last axis.

    .. math::

        \mathrm{KL} = \tfrac{1}{2} \sum_j \big[\mu_j^2 + e^{v_j} - 1 - v_j\big] \qquad (v = \text{logvar})

    (Kingma & Welling 2014, appendix B)

    Returns
    -------
    array (batch,)
    """
    xp = namespace(logvar)
    return 0.5 * xp.sum(mu * mu + xp.exp(logvar) - 1.0 - logvar, axis=-1)


def kl_standard_normal_grad(mu, logvar):
    r"""Derivatives of kl_standard_normal: ($\partial \mathrm{KL} / \partial \mu = \mu$,
    $\partial \mathrm{KL} / \partial v = (e^{v} - 1) / 2$)."""
    xp = namespace(logvar)
    return mu, 0.5 * (xp.exp(logvar) - 1.0)


def kl_normal(mu, logvar, prior_mean, prior_logvar):
    r"""KL( N(mu, diag e^logvar) || N(prior_mean, diag e^prior_logvar) ), summed over the last axis.

    .. math::

        \mathrm{KL} = \tfrac{1}{2} \sum_j \big[u_j - v_j + (e^{v_j} + (\mu_j - m_j)^2)\, e^{-u_j} - 1\big]

    (v = logvar; m, u = the prior's mean and log-variance)

    ``prior_mean`` and ``prior_logvar`` broadcast against ``mu`` (e.g. shape (z_dim,)).

    Returns
    -------
    array (batch,)
    """
    xp = namespace(logvar)
    diff = mu - prior_mean
    return 0.5 * xp.sum(prior_logvar - logvar + (xp.exp(logvar) + diff * diff) * xp.exp(-prior_logvar) - 1.0,
                        axis=-1)


def kl_normal_grad(mu, logvar, prior_mean, prior_logvar):
    r"""Derivatives of kl_normal, each of the broadcast shape (batch, d):

    .. math::

        \partial \mathrm{KL} / \partial \mu = (\mu - m)\, e^{-u}, \qquad
        \partial \mathrm{KL} / \partial m = -(\mu - m)\, e^{-u}

        \partial \mathrm{KL} / \partial v = (e^{v - u} - 1) / 2, \qquad
        \partial \mathrm{KL} / \partial u = \big(1 - (e^{v} + (\mu - m)^2)\, e^{-u}\big) / 2
    """
    xp = namespace(logvar)
    inv_prior_var = xp.exp(-prior_logvar)
    diff = mu - prior_mean
    d_mu = diff * inv_prior_var
    var_ratio = xp.exp(logvar) * inv_prior_var
    d_logvar = 0.5 * (var_ratio - 1.0)
    d_prior_logvar = 0.5 * (1.0 - var_ratio - diff * d_mu)
    return d_mu, d_logvar, -d_mu, d_prior_logvar
