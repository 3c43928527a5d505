r"""Closed forms for the linear Gaussian VAE: probabilistic PCA and factor analysis.

A GaussianVAE with ``hidden=()``, ``likelihood="gaussian"`` and a decoder variance constant in z is a linear
Gaussian latent-variable model (W: (d, q)):

.. math::

    z \sim \mathcal{N}(0, I_q), \qquad x \mid z \sim \mathcal{N}(W z + \mu, \Psi),
    \qquad \text{so} \qquad x \sim \mathcal{N}(\mu, C), \quad C = W W^\top + \Psi

with $\Psi = \sigma^2 I$ (``decoder_variance="shared"``: probabilistic PCA, Tipping & Bishop 1999) or a diagonal
$\Psi$ (``"per-dimension"``: factor analysis). Everything is known in closed form:

* pPCA's maximum-likelihood solution: $\mu$ = the sample mean; with the sample covariance $S = U \operatorname{diag}(l)
  U^\top$ ($l$ decreasing), $\sigma^2$ = the mean of the $d - q$ discarded eigenvalues and
  $W = U_q (\operatorname{diag}(l_q) - \sigma^2 I)^{1/2}$ (any rotation $W R$ is as good; this one has orthogonal
  columns);
* factor analysis by EM (Rubin & Thayer 1982), which converges to a maximum of the likelihood;
* the exact log-likelihood $\log \mathcal{N}(x; \mu, C)$ and the exact posterior
  $p(z \mid x) = \mathcal{N}(G W^\top \Psi^{-1} (x - \mu), G)$, $G = (I + W^\top \Psi^{-1} W)^{-1}$;
* the linear VAE's best diagonal encoder for a given decoder (Lucas, Tucker, Grosse & Norouzi 2019): the exact
  posterior mean, and variances $1 / (I + W^\top \Psi^{-1} W)_{kk}$ (for pPCA: $\sigma^2 / M_{kk}$,
  $M = W^\top W + \sigma^2 I$). When $W^\top \Psi^{-1} W$ is diagonal the exact posterior is diagonal too, the
  encoder equals it and the ELBO equals $\log p(x)$ for every noise draw: the ELBO is tight at the
  maximum-likelihood solution.

Arrays are float64 on the active backend (host NumPy arrays are moved there).

References
----------
M. E. Tipping, C. M. Bishop, "Probabilistic principal component analysis", JRSS B 61, 1999.
D. B. Rubin, D. T. Thayer, "EM algorithms for ML factor analysis", Psychometrika 47, 1982.
J. Lucas, G. Tucker, R. Grosse, M. Norouzi, "Don't blame the ELBO! A linear VAE perspective on posterior
collapse", NeurIPS 2019.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..backend import get_backend
from . import elbo

__all__ = ["LinearGaussian", "analytic_elbo", "decoder_model", "exact_log_likelihood", "exact_posterior",
           "factor_analysis_em", "gap_decomposition", "load_into_vae", "optimal_encoder", "ppca_ml",
           "sample_covariance"]


@dataclass
class LinearGaussian:
    """x ~ N(mean, W W^T + diag(psi)): ``mean`` (d,), ``W`` (d, q), ``psi`` (d,) noise variances."""

    mean: object
    W: object
    psi: object

    @property
    def covariance(self):
        """C = W W^T + diag(psi), (d, d)."""
        return self.W @ self.W.T + _diag(self.psi)


def _diag(v):
    B = get_backend()
    return B.xp.reshape(v, (-1, 1)) * B.eye(v.shape[0], "float64")


def _host64(X):
    B = get_backend()
    return B.asarray(X, dtype="float64")


def sample_covariance(X):
    """(mean (d,), S (d, d)) of the rows of X, S with divisor n (the maximum-likelihood estimate)."""
    xp = get_backend().xp
    X = _host64(X)
    mean = xp.mean(X, axis=0)
    Xc = X - mean
    return mean, (Xc.T @ Xc) / X.shape[0]


def ppca_ml(X, q: int, noise_variance=None) -> LinearGaussian:
    r"""Probabilistic PCA's maximum-likelihood solution with $q$ latent dimensions (orthogonal columns of $W$).

    With the sample covariance $S = U \operatorname{diag}(l) U^\top$, $l$ decreasing (Tipping & Bishop 1999):

    .. math::

        \sigma^2 = \frac{1}{d - q} \sum_{k > q} l_k, \qquad W = U_q (\operatorname{diag}(l_q) - \sigma^2 I)^{1/2}

    With ``noise_variance`` fixed (a VAE with ``decoder_variance=<float>``) the maximum over $W$ alone:
    $W = U_q (\operatorname{diag}(l_q) - \sigma^2 I)_+^{1/2}$, so every direction whose variance $l_k$ is below
    $\sigma^2$ gets a zero column: its latent unit is unused (Lucas et al. 2019; the ELBO's optimum then has
    inactive units)."""
    xp = get_backend().xp
    mean, S = sample_covariance(X)
    d = S.shape[0]
    if not 1 <= q < d:
        raise ValueError(f"pPCA needs 1 <= q < d = {d} latent dimensions, got q={q}")
    # $S = U \operatorname{diag}(l) U^\top$, $l$ decreasing
    evals, evecs = xp.linalg.eigh(S)
    order = xp.argsort(-evals)                                        # decreasing
    evals, evecs = xp.take(evals, order, axis=0), xp.take(evecs, order, axis=1)
    # $\sigma^2$ = the mean of the $d - q$ discarded eigenvalues,
    # $W = U_q (\operatorname{diag}(l_q) - \sigma^2 I)_+^{1/2}$
    sigma2 = xp.mean(evals[q:]) if noise_variance is None else float(noise_variance)
    W = evecs[:, :q] * xp.sqrt(xp.clip(evals[:q] - sigma2, 0.0, None))
    return LinearGaussian(mean, W, xp.zeros_like(evals) + sigma2)


def factor_analysis_em(X, q: int, iterations: int = 2000, tol: float = 1e-10, seed: int = 0) -> LinearGaussian:
    r"""Factor analysis by EM from a random start, until the log-likelihood gains less than ``tol`` nats per example.

    E step (so $\mathbb{E}[z \mid x] = B (x - \mu)$):

    .. math::

        G = (I + W^\top \Psi^{-1} W)^{-1}, \qquad B = G W^\top \Psi^{-1}

    M step, each entry of $\Psi$ at least 0.1 % of the pixel's variance (a pixel that the factors explain almost
    exactly would otherwise drive its noise variance to 0):

    .. math::

        W \leftarrow S B^\top (G + B S B^\top)^{-1}, \qquad \Psi \leftarrow \operatorname{diag}(S - W B S)

    The returned $W$ is rotated so that $W^\top \Psi^{-1} W$ is diagonal (the likelihood is unchanged by rotations).
    """
    B_ = get_backend()
    xp = B_.xp
    mean, S = sample_covariance(X)
    d = S.shape[0]
    I_q = B_.eye(q, "float64")
    W = B_.rng(seed, host=True).normal((d, q), "float64") * 0.1
    variances = xp.sum(S * B_.eye(d, "float64"), axis=1)            # diag(S)
    if float(xp.min(variances)) <= 0.0:
        raise ValueError("factor analysis needs every column of X to vary: drop the constant columns first")
    floor = 1e-3 * variances                                          # each noise variance >= 0.1 % of its pixel's
    psi = variances
    previous = -math.inf
    for _ in range(iterations):
        # E step: $G = (I + W^\top \Psi^{-1} W)^{-1}$, $B = G W^\top \Psi^{-1}$
        W_over_psi = W / xp.reshape(psi, (-1, 1))                     # Psi^{-1} W, (d, q)
        G = xp.linalg.inv(I_q + W.T @ W_over_psi)                     # posterior covariance, (q, q)
        Bm = G @ W_over_psi.T                                         # (q, d)
        # M step: $W \leftarrow S B^\top (G + B S B^\top)^{-1}$, $\Psi \leftarrow \operatorname{diag}(S - W B S)$
        W = S @ Bm.T @ xp.linalg.inv(G + Bm @ S @ Bm.T)
        psi = xp.sum((S - W @ Bm @ S) * B_.eye(d, "float64"), axis=1)
        psi = xp.maximum(psi, floor)                                  # no Heywood case (a variance -> 0)
        current = float(xp.mean(exact_log_likelihood(LinearGaussian(mean, W, psi), X)))
        if current - previous < tol:
            break
        previous = current
    return _rotate_to_diagonal(LinearGaussian(mean, W, psi))


def _rotate_to_diagonal(model: LinearGaussian) -> LinearGaussian:
    """The same model with W R, R orthogonal, such that (W R)^T Psi^{-1} (W R) is diagonal."""
    xp = get_backend().xp
    A = model.W.T @ (model.W / xp.reshape(model.psi, (-1, 1)))       # W^T Psi^{-1} W, (q, q)
    _, R = xp.linalg.eigh(A)
    return LinearGaussian(model.mean, model.W @ R, model.psi)


def exact_log_likelihood(model: LinearGaussian, X):
    r"""$\log p(x) = \log \mathcal{N}(x; \mu, C)$, $C = W W^\top + \operatorname{diag}(\psi)$, per row of X, (n,):

    .. math::

        \log p(x) = -\tfrac{1}{2} \left( d \log 2\pi + \log \det C + (x - \mu)^\top C^{-1} (x - \mu) \right)
    """
    xp = get_backend().xp
    X = _host64(X)
    C = model.covariance
    d = C.shape[0]
    sign, logdet = xp.linalg.slogdet(C)
    Xc = X - model.mean
    quad = xp.sum(Xc * xp.linalg.solve(C, Xc.T).T, axis=1)           # (x - mu)^T C^{-1} (x - mu)
    return -0.5 * (d * math.log(2 * math.pi) + logdet + quad)


def exact_posterior(model: LinearGaussian, X):
    r"""(mean (n, q), covariance (q, q)) of the exact posterior

    .. math::

        p(z \mid x) = \mathcal{N}(G W^\top \Psi^{-1} (x - \mu), G)

        G = (I + W^\top \Psi^{-1} W)^{-1}
    """
    B = get_backend()
    xp = B.xp
    q = model.W.shape[1]
    W_over_psi = model.W / xp.reshape(model.psi, (-1, 1))
    G = xp.linalg.inv(B.eye(q, "float64") + model.W.T @ W_over_psi)
    # each row $(x - \mu)^\top \Psi^{-1} W G$: the posterior mean, transposed ($G$ is symmetric)
    return (_host64(X) - model.mean) @ W_over_psi @ G, G            # G symmetric: (G W^T Psi^-1 (x-mu))^T


def optimal_encoder(model: LinearGaussian):
    r"""The linear VAE's best diagonal Gaussian encoder for this decoder: (A (d, q), b (q,), logvar (q,)) with
    $\mu(x) = x A + b$ the exact posterior mean and variances $1 / (I + W^\top \Psi^{-1} W)_{kk}$; with $x$ and the
    model's mean $\bar{x}$ as rows:

    .. math::

        P = I + W^\top \Psi^{-1} W, \quad A = \Psi^{-1} W P^{-1}, \quad b = -\bar{x} A, \quad \sigma_k^2 = 1 / P_{kk}
    """
    B = get_backend()
    xp = B.xp
    q = model.W.shape[1]
    W_over_psi = model.W / xp.reshape(model.psi, (-1, 1))
    P = B.eye(q, "float64") + model.W.T @ W_over_psi                 # posterior precision, (q, q)
    A = W_over_psi @ xp.linalg.inv(P)                                 # (d, q)
    b = -(xp.reshape(model.mean, (1, -1)) @ A)[0, :]
    logvar = -xp.log(xp.sum(P * B.eye(q, "float64"), axis=1))
    return A, b, logvar


def load_into_vae(vae, model: LinearGaussian) -> None:
    """Set a linear GaussianVAE (``hidden=()``, ``decoder_variance`` "shared" or "per-dimension") to this
    decoder and its optimal encoder, in place."""
    B = get_backend()
    xp = B.xp
    if vae.hidden or vae.decoder_hidden or vae.decoder_variance not in ("shared", "per-dimension"):
        raise ValueError("load_into_vae needs GaussianVAE(..., hidden=(), likelihood='gaussian', "
                         "decoder_variance='shared' or 'per-dimension')")
    A, b, logvar = optimal_encoder(model)
    log_psi = xp.log(model.psi)
    if vae.decoder_variance == "shared":
        log_psi = xp.reshape(xp.mean(log_psi), (1,))
    if model.W.shape[1] != vae.z_dim or model.W.shape[0] != vae.x_dim:
        raise ValueError(f"the model has W of shape {tuple(model.W.shape)}, the VAE needs ({vae.x_dim}, {vae.z_dim})")
    vae.set_params({
        "encoder.mu.W": A, "encoder.mu.b": b,
        "encoder.logvar.W": xp.zeros_like(A), "encoder.logvar.b": logvar,
        "decoder.mean.W": model.W.T, "decoder.mean.b": model.mean,
        "decoder.noise.logvar": log_psi,
    })


def _elbo(model: LinearGaussian, X, mu, logvar):
    r"""The ELBO per example (n,) of encoder $\mathcal{N}(\mu, \operatorname{diag} \exp(\text{logvar}))$, mu and
    logvar (n, q), under the decoder ``model``, with $m = W \mu + \bar{x}$ ($\bar{x}$ the model's mean) and
    $s = \exp(\text{logvar})$:

    .. math::

        \mathbb{E}_q[\log p(x \mid z)] = -\frac{1}{2} \sum_j \left[ \log 2\pi + \log \psi_j
        + \frac{(x_j - m_j)^2 + \sum_k W_{jk}^2 s_k}{\psi_j} \right]

        \text{ELBO} = \mathbb{E}_q[\log p(x \mid z)]
        - \operatorname{KL}(\mathcal{N}(\mu, \operatorname{diag} s) \| \mathcal{N}(0, I))
    """
    xp = get_backend().xp
    s = xp.exp(logvar)
    rec = -0.5 * xp.sum(math.log(2 * math.pi) + xp.log(model.psi)
                        + ((X - (mu @ model.W.T + model.mean)) ** 2 + s @ (model.W * model.W).T) / model.psi, axis=1)
    # the KL to the prior, in closed form: $\tfrac{1}{2} \sum_k (\mu_k^2 + s_k - 1 - \log s_k)$
    kl = 0.5 * xp.sum(mu * mu + s - 1.0 - logvar, axis=1)
    return rec - kl


def analytic_elbo(vae, X):
    """A linear Gaussian VAE's ELBO per example (n,) in closed form, without sampling (see ``_elbo``), for a
    GaussianVAE with ``hidden=()``, ``likelihood="gaussian"`` and a decoder variance constant in z."""
    _require_linear(vae, "analytic_elbo")
    X = vae.validate_data(X)
    mu, logvar = vae.encode(X)
    return _elbo(decoder_model(vae), X, mu, logvar)


def _require_linear(vae, what):
    if vae.hidden or vae.decoder_hidden or vae.decoder_variance == "amortised" or vae.likelihood != "gaussian":
        raise ValueError(f"{what} needs a linear GaussianVAE: hidden=(), likelihood='gaussian' and a "
                         "decoder_variance constant in z")


def decoder_model(vae) -> LinearGaussian:
    """The generative model of a linear GaussianVAE as a LinearGaussian: W = the decoder's weights transposed
    (d, q), mean = its bias (d,), psi = its noise variances (d,) (learned, shared or fixed)."""
    xp = get_backend().xp
    _require_linear(vae, "decoder_model")
    mean = vae.params["decoder.mean.b"]
    psi = xp.exp(elbo.decoder_logvar(vae.params, xp.reshape(mean, (1, -1)), vae.decoder_variance)[0, :])
    return LinearGaussian(mean, vae.params["decoder.mean.W"].T, psi)


def gap_decomposition(vae, X, best: LinearGaussian) -> dict:
    r"""Where a linear VAE's ELBO falls short of the maximum log-likelihood, in nats per example (floats), each
    gap $\Delta \geq 0$:

    .. math::

        \max \log p - \text{ELBO} = \Delta_{\text{decoder}} + \Delta_{\text{posterior-shape}} + \Delta_{\text{encoder}}

    * ``decoder``: $\max \log p(x)$ (``best``) $- \log p(x)$ under the trained decoder: the generative model is not
      at the maximum likelihood yet;
    * ``posterior_shape``: $\log p(x)$ - the ELBO with the best diagonal encoder for this decoder
      (``optimal_encoder``) = the mean $\operatorname{KL}(q^*(z \mid x) \| p(z \mid x))$: the exact posterior is not
      diagonal because the decoder's columns are not yet orthogonal ($W^\top \Psi^{-1} W$ not diagonal); zero at
      the optimum;
    * ``encoder``: that ELBO - the trained ELBO: the encoder is not yet the best one for its decoder.

    Returns {"max_log_likelihood", "log_likelihood", "elbo_best_encoder", "elbo", "decoder", "posterior_shape",
    "encoder", "total"}.
    """
    xp = get_backend().xp
    _require_linear(vae, "gap_decomposition")
    X = vae.validate_data(X)
    model = decoder_model(vae)
    max_ll = float(xp.mean(exact_log_likelihood(best, X)))
    log_likelihood = float(xp.mean(exact_log_likelihood(model, X)))
    elbo = float(xp.mean(analytic_elbo(vae, X)))
    A, b, logvar = optimal_encoder(model)                             # q* for this decoder
    mu_best = X @ A + b
    elbo_best = float(xp.mean(_elbo(model, X, mu_best, xp.zeros_like(mu_best) + logvar)))
    return {"max_log_likelihood": max_ll, "log_likelihood": log_likelihood, "elbo_best_encoder": elbo_best,
            "elbo": elbo, "decoder": max_ll - log_likelihood, "posterior_shape": log_likelihood - elbo_best,
            "encoder": elbo_best - elbo, "total": max_ll - elbo}
