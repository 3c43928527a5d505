r"""The Gaussian VAE's mathematics: short pure functions of the flat parameter dict, in the paper's order.

Model (Kingma & Welling 2014, section 3 and appendix C), with mu, logvar (batch, z_dim) and logits (batch, x_dim):

.. math::

    q(z \mid x) = \mathcal{N}(\mu(x), \operatorname{diag} \exp \text{logvar}(x)) \qquad \text{encoder (C.2)}

    z = \mu + \sigma \odot \epsilon, \quad \sigma = \exp(\text{logvar} / 2), \quad \epsilon \sim \mathcal{N}(0, I)
    \qquad \text{reparameterise (section 2.4)}

    p(x \mid z) = \operatorname{Bernoulli}(\operatorname{sigmoid}(\text{logits}(z))) \qquad \text{decoder (C.1)}

    \text{or } p(x \mid z) = \mathcal{N}(\text{mean}(z), \operatorname{diag} \exp \text{logvar}_{\text{dec}})
    \qquad \text{(C.2), likelihood="gaussian"}

    p(z) = \mathcal{N}(0, I), \text{ or } \mathcal{N}(m, \operatorname{diag} \exp v) \text{ learned}
    \qquad \text{(prior="learned")}

    -\text{ELBO}(x) = -\log p(x \mid z) + \mathrm{KL}(q(z \mid x) \,\|\, p(z))
    \qquad \text{(eq. 10: one sample of } \epsilon \text{, the KL in closed form)}

    \text{loss} = \frac{1}{n} \sum_i -\text{ELBO}(x_i) \qquad \text{(over the batch, nats per example)}

The parameters are the flat dict of :attr:`GaussianVAE.params`: ``"encoder.<l>.W"``/``".b"`` (the encoder's
hidden layers, l = 0, 1, ...), ``"encoder.mu.W"``, ``"encoder.logvar.W"``, ``"decoder.<l>.W"``, then
``"decoder.logits.W"`` (Bernoulli) or ``"decoder.mean.W"`` and ``"decoder.logvar.W"`` (a Gaussian decoder whose
variance is a head of z), ``"decoder.noise.logvar"`` (a variance constant in z: (x_dim,) "per-dimension" or (1,)
"shared"), ``"prior.mean"`` and ``"prior.logvar"`` (a learned prior), each with its ``".b"``. Every hidden layer is
$h' = \operatorname{act}(h W + b)$; every head is affine, $\text{out} = h W + b$.

The configuration keywords, with :class:`GaussianVAE`'s defaults: ``likelihood="bernoulli"``,
``activation="relu"``, ``decoder_variance="amortised"`` (or "per-dimension", "shared", a positive float: fixed),
``prior="standard"`` and ``fast=True`` (the fused Bernoulli term and the IW estimate's thread pool; ``False``: the
textbook forms, equal to 1e-12 in float64).

The backward pass (:func:`negative_elbo_and_grads`) writes every derivative out, ``d_<v>``
$= d_v = \partial \text{loss} / \partial v$; the test suite checks it against central finite differences and an
independent autograd in float64.

References
----------
D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114 (eq. 10, appendices B, C).
D. J. Rezende, S. Mohamed, D. Wierstra, "Stochastic Backpropagation and Approximate Inference in Deep Generative
Models", ICML 2014.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, arXiv:1509.00519 (eq. 8).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..backend import get_backend
from ..fast import map_blocks
from ..layers import affine, affine_backward, make_activation
from ..numerics import (
    LOG_2PI,
    bernoulli_log_prob,
    bernoulli_log_prob_grad,
    bernoulli_nll_with_grad,
    gaussian_log_prob,
    gaussian_log_prob_grad,
    kl_normal,
    kl_normal_grad,
    kl_standard_normal,
    kl_standard_normal_grad,
    logsumexp,
    namespace,
)

__all__ = ["CONFIG", "DecoderCache", "EncoderCache", "Forward", "decode", "decoder_logvar", "encode", "forward",
           "iw_log_likelihood", "kl_divergence", "log_prior", "negative_elbo", "negative_elbo_and_grads",
           "negative_iw_bound_and_grads", "reconstruction_nll"]


CONFIG = {"likelihood": "bernoulli", "activation": "relu", "decoder_variance": "amortised", "prior": "standard",
          "fast": True}   # the configuration keywords and their defaults (GaussianVAE's)


def _check_config(config):
    """Refuse a keyword that is not one of CONFIG (a misspelt one would otherwise be ignored)."""
    unknown = [k for k in config if k not in CONFIG]
    if unknown:
        raise TypeError(f"unknown configuration keyword(s) {', '.join(map(repr, unknown))}: choose from "
                        f"{', '.join(CONFIG)}")


# ------------------------------------------------------------------------------------------------
# The model: encoder, decoder, the two terms of the ELBO
# ------------------------------------------------------------------------------------------------
class EncoderCache(NamedTuple):
    """What the encoder's backward pass needs: each hidden layer's (input, activation cache), and ``h``
    (batch, h_enc), the input of the mu and logvar heads (``x`` itself when there is no hidden layer)."""

    layers: list
    h: Any


def encode(params, x, *, activation="relu", **config):
    r"""$q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag} \exp \text{logvar})$: ``(mu, logvar, cache)``, mu and logvar
    (batch, z_dim) (logvar $= \log \sigma^2$ is the log of the variance), ``cache`` an :class:`EncoderCache`.
    ``x`` (batch, x_dim). The other configuration keywords (``config``) are accepted and not used."""
    _check_config(config)
    h, layers = _hidden_layers(params, "encoder", x, activation)     # (batch, h_enc)
    mu = _affine(params, "encoder.mu", h)                            # (batch, z_dim)
    logvar = _affine(params, "encoder.logvar", h)                    # (batch, z_dim), log sigma^2
    return mu, logvar, EncoderCache(layers, h)


def _heads(likelihood, decoder_variance):
    """The decoder's affine heads: "logits", or "mean" (and "logvar" when the variance is a head of z)."""
    if likelihood == "bernoulli":
        return ("logits",)
    return ("mean", "logvar") if decoder_variance == "amortised" else ("mean",)


class DecoderCache(NamedTuple):
    """What the decoder's backward pass needs: each hidden layer's (input, activation cache), and ``h``
    (batch, h_dec), the input of the heads (``z`` itself when there is no hidden layer)."""

    layers: list
    h: Any


def decode(params, z, *, likelihood="bernoulli", activation="relu", decoder_variance="amortised", **config):
    r"""$p(x \mid z)$: ``(outs, cache)``, outs ``{"logits"}`` or ``{"mean", "logvar"}``, each (batch, x_dim), cache a
    :class:`DecoderCache`. A log-variance constant in z (``decoder.noise.logvar``, or a fixed variance) is
    broadcast to (batch, x_dim). ``z`` (batch, z_dim). The other configuration keywords are accepted."""
    _check_config(config)
    h, layers = _hidden_layers(params, "decoder", z, activation)     # (batch, h_dec)
    outs = {name: _affine(params, f"decoder.{name}", h) for name in _heads(likelihood, decoder_variance)}
    if likelihood == "gaussian" and "logvar" not in outs:
        outs["logvar"] = decoder_logvar(params, outs["mean"], decoder_variance)
    return outs, DecoderCache(layers, h)


def decoder_logvar(params, mean, decoder_variance):
    """The log-variance of a Gaussian decoder whose variance does not depend on z, shaped like ``mean``."""
    xp = namespace(mean)
    if decoder_variance in ("per-dimension", "shared"):
        return xp.zeros_like(mean) + params["decoder.noise.logvar"]     # (x_dim,) or (1,), broadcast
    return xp.zeros_like(mean) + math.log(decoder_variance)             # a fixed variance


def reconstruction_nll(x, outs, *, likelihood="bernoulli", **config):
    r"""$\text{rec} = -\log p(x \mid z)$ per example, (batch,): Bernoulli
    $\sum_j \operatorname{softplus}(l_j) - x_j l_j$, or Gaussian
    $\tfrac{1}{2} \sum_j [\log 2\pi + \text{logvar}_j + (x_j - \text{mean}_j)^2 \exp(-\text{logvar}_j)]$."""
    _check_config(config)
    if likelihood == "bernoulli":
        return -bernoulli_log_prob(x, outs["logits"])
    return -gaussian_log_prob(x, outs["mean"], outs["logvar"])


def _reconstruction_nll_and_grad(x, outs, likelihood, fast):
    """(rec, d rec / d outs): rec = -log p(x | z) (batch,) and its derivatives, each (batch, x_dim)."""
    if likelihood == "bernoulli":
        if fast:    # fused: e^{-|l|} once for both (numerics.bernoulli_nll_with_grad, tested equal to the else)
            rec, d_logits = bernoulli_nll_with_grad(x, outs["logits"])
        else:       # textbook: d rec / d logits = sigmoid(logits) - x
            rec, d_logits = -bernoulli_log_prob(x, outs["logits"]), -bernoulli_log_prob_grad(x, outs["logits"])
        return rec, {"logits": d_logits}
    rec = -gaussian_log_prob(x, outs["mean"], outs["logvar"])
    d_log_p_d_mean, d_log_p_d_logvar = gaussian_log_prob_grad(x, outs["mean"], outs["logvar"])
    return rec, {"mean": -d_log_p_d_mean, "logvar": -d_log_p_d_logvar}


def kl_divergence(params, mu, logvar, *, prior="standard", **config):
    r"""$\mathrm{KL}(q(z \mid x) \,\|\, p(z))$ per example, (batch,) (appendix B):
    $\tfrac{1}{2} \sum_j [\mu_j^2 + \exp(\text{logvar}_j) - 1 - \text{logvar}_j]$ for $\mathcal{N}(0, I)$,
    :func:`refvae.numerics.kl_normal` if learned."""
    _check_config(config)
    if prior == "standard":
        return kl_standard_normal(mu, logvar)
    return kl_normal(mu, logvar, params["prior.mean"], params["prior.logvar"])


def log_prior(params, z, *, prior="standard", **config):
    """log p(z), summed over the last axis: -1/2 sum_j [log 2 pi + z_j^2] for N(0, I)."""
    _check_config(config)
    if prior == "standard":
        return -0.5 * namespace(z).sum(LOG_2PI + z * z, axis=-1)
    return gaussian_log_prob(z, params["prior.mean"], params["prior.logvar"])


# ------------------------------------------------------------------------------------------------
# The ELBO: one forward pass, then the backward pass
# ------------------------------------------------------------------------------------------------
class Forward(NamedTuple):
    """Everything the forward pass computes, for the loss and for the backward pass. Shapes: mu, logvar, std, z
    (batch, z_dim); outs and d_rec dicts of (batch, x_dim) arrays; rec and kl (batch,)."""

    mu: Any
    logvar: Any
    std: Any
    z: Any
    outs: dict
    rec: Any
    kl: Any
    d_rec: dict | None
    encoder: EncoderCache
    decoder: DecoderCache


def forward(params, x, eps, *, likelihood="bernoulli", activation="relu", decoder_variance="amortised",
            prior="standard", fast=True, with_grad=False) -> Forward:
    r"""The forward pass at fixed noise ``eps`` (batch, z_dim): the two terms of $-\text{ELBO}(x)$ for every row of
    ``x`` (batch, x_dim); ``with_grad=True`` also gives $\partial \text{rec} / \partial \text{outs}$ (the backward
    pass's first step)."""
    # $q(z \mid x) = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)$
    mu, logvar, enc = encode(params, x, activation=activation)
    # $\sigma = \exp(\text{logvar} / 2)$
    std = namespace(logvar).exp(0.5 * logvar)
    # $z = \mu + \sigma \odot \epsilon$, the reparameterisation
    z = mu + std * eps
    # $p(x \mid z)$: logits, or mean and logvar
    outs, dec = decode(params, z, likelihood=likelihood, activation=activation, decoder_variance=decoder_variance)
    # $\text{rec} = -\log p(x \mid z)$ (and $\partial \text{rec} / \partial \text{outs}$)
    if with_grad:
        rec, d_rec = _reconstruction_nll_and_grad(x, outs, likelihood, fast)
    else:
        rec, d_rec = reconstruction_nll(x, outs, likelihood=likelihood), None
    # $\text{kl} = \mathrm{KL}(q(z \mid x) \,\|\, p(z))$
    kl = kl_divergence(params, mu, logvar, prior=prior)
    return Forward(mu, logvar, std, z, outs, rec, kl, d_rec, enc, dec)


def negative_elbo(params, x, eps, **config):
    """(rec, kl) per example, each (batch,): -log p(x|z) and KL(q(z|x) || p(z)) at z = mu + sigma * eps, so
    -ELBO = rec + kl (no gradients). ``config``: the keywords of :func:`forward`."""
    f = forward(params, x, eps, **config)
    return f.rec, f.kl


def negative_elbo_and_grads(params, x, eps, *, likelihood="bernoulli", activation="relu",
                            decoder_variance="amortised", prior="standard", fast=True, with_terms=False):
    r"""The batch mean of $-\text{ELBO}$ and its gradient with respect to every parameter, at fixed noise ``eps``.

    Parameters
    ----------
    params : dict
        Name -> array, the keys of :attr:`GaussianVAE.params`.
    x : array (n, x_dim)
    eps : array (n, z_dim)
        The reparameterisation noise, $\epsilon \sim \mathcal{N}(0, I)$.
    with_terms : bool
        Also return ``{"rec": ..., "kl": ...}``, the batch means of the two terms (floats).

    Returns
    -------
    loss : float
        $\frac{1}{n} \sum_i (\text{rec}_i + \text{kl}_i)$, nats per example.
    grads : dict
        $\partial \text{loss} / \partial \text{param}$, with exactly the keys of ``params``.
    """
    xp = namespace(x)
    n = x.shape[0]
    heads = _heads(likelihood, decoder_variance)
    # ---- forward -----------------------------------------------------------------------------------------------
    # loss $= \frac{1}{n} \sum_i [\text{rec}_i + \text{kl}_i]$, rec $= -\log p(x|z)$, $z = \mu + \sigma \odot \epsilon$
    f = forward(params, x, eps, likelihood=likelihood, activation=activation, decoder_variance=decoder_variance,
                prior=prior, fast=fast, with_grad=True)

    # ---- backward ---------------------------------------------------------------------------------------------
    # grads[name] $= \partial \text{loss} / \partial \text{name}$; every $d_v$ is $\partial \text{loss} / \partial v$
    grads = {}
    # $d_{\text{outs}} = \frac{1}{n} \partial \text{rec} / \partial \text{outs}$; Bernoulli:
    # $d_{\text{logits}} = (\operatorname{sigmoid}(\text{logits}) - x) / n$
    d_outs = {name: f.d_rec[name] * (1.0 / n) for name in heads}
    if decoder_variance in ("per-dimension", "shared"):
        # $d_{\text{noise}} = \frac{1}{n} \sum_i \partial \text{rec}_i / \partial \text{logvar}_i$: one log-variance
        # for every example (and every pixel: shared)
        d_noise = xp.sum(f.d_rec["logvar"], axis=0) * (1.0 / n)                  # (x_dim,)
        grads["decoder.noise.logvar"] = d_noise if decoder_variance == "per-dimension" \
            else xp.reshape(xp.sum(d_noise), (1,))
    # $d_z$, through the decoder's heads and hidden layers
    d_z, g = _decoder_backward(params, d_outs, f.decoder, activation)                  # (n, z_dim)
    grads.update(g)
    # the KL path for $\mathcal{N}(0, I)$: $\partial \mathrm{KL} / \partial \mu = \mu$,
    # $\partial \mathrm{KL} / \partial \text{logvar} = (\sigma^2 - 1) / 2$ (learned prior: numerics.kl_normal_grad)
    d_kl_d_mu, d_kl_d_logvar, g = _kl_grad(params, f.mu, f.logvar, prior, n)
    grads.update(g)
    # the paths join ($\partial z / \partial \mu = 1$): $d_\mu = d_z + \frac{1}{n} \partial \mathrm{KL} / \partial \mu$
    d_mu = d_z + d_kl_d_mu * (1.0 / n)
    # with $\partial z / \partial \text{logvar} = \epsilon \odot \sigma / 2$:
    # $d_{\text{logvar}} = d_z \odot \epsilon \odot \sigma/2 + \frac{1}{n} \partial\mathrm{KL} / \partial\text{logvar}$
    d_logvar = d_z * eps * (0.5 * f.std) + d_kl_d_logvar * (1.0 / n)
    grads.update(_encoder_backward(params, d_mu, d_logvar, f.encoder, activation))

    # One device -> host transfer, after the whole backward pass is queued (on a GPU it waits for the step).
    terms = get_backend().to_numpy(xp.stack([xp.mean(f.rec), xp.mean(f.kl)]))
    loss = float(terms[0] + terms[1])
    if with_terms:
        return loss, grads, {"rec": float(terms[0]), "kl": float(terms[1])}
    return loss, grads


def _decoder_backward(params, d_outs, dec, activation):
    r"""From $d_{\text{outs}} = \partial \text{loss} / \partial$ (each head's output), (rows, x_dim):
    $\partial \text{loss} / \partial z$ (rows, z_dim) and the decoder's grads. Every head is
    $\text{outs} = h_{\text{dec}} W + b$, so $d_{h_{\text{dec}}} = \sum_{\text{heads}} d_{\text{out}} W^\top$."""
    grads, d_h_dec = {}, None
    for name, d_out in d_outs.items():
        d_h, g = _affine_backward(params, f"decoder.{name}", d_out, dec.h)               # (rows, h_dec)
        d_h_dec = d_h if d_h_dec is None else d_h_dec + d_h
        grads.update(g)
    d_z, g = _hidden_layers_backward(params, "decoder", d_h_dec, dec.layers, activation)
    grads.update(g)
    return d_z, grads


def _kl_grad(params, mu, logvar, prior, n):
    r"""$(\partial \mathrm{KL} / \partial \mu, \partial \mathrm{KL} / \partial \text{logvar})$, each (n, z_dim), and the
    learned prior's grads $\frac{1}{n} \sum_i \partial \mathrm{KL}_i / \partial \text{prior}$."""
    if prior == "standard":                                   # KL(N(mu, sigma^2) || N(0, 1)) per dimension
        d_mu, d_logvar = kl_standard_normal_grad(mu, logvar)  # mu, (e^logvar - 1) / 2
        return d_mu, d_logvar, {}
    xp = namespace(mu)
    d_mu, d_logvar, d_pm, d_plv = kl_normal_grad(mu, logvar, params["prior.mean"], params["prior.logvar"])
    return d_mu, d_logvar, {"prior.mean": xp.sum(d_pm, axis=0) * (1.0 / n),        # (z_dim,)
                            "prior.logvar": xp.sum(d_plv, axis=0) * (1.0 / n)}


def _encoder_backward(params, d_mu, d_logvar, enc, activation):
    r"""The encoder's grads from $d_\mu$ and $d_{\text{logvar}}$ (n, z_dim): the heads $\mu = h W_\mu + b_\mu$ and
    $\text{logvar} = h W_{\text{lv}} + b_{\text{lv}}$, then its hidden layers (no gradient for the data)."""
    has_hidden = bool(enc.layers)
    d_h_mu, grads = _affine_backward(params, "encoder.mu", d_mu, enc.h, need_dh=has_hidden)
    d_h_logvar, g = _affine_backward(params, "encoder.logvar", d_logvar, enc.h, need_dh=has_hidden)
    grads.update(g)
    if has_hidden:
        # $d_{h_{\text{enc}}} = d_\mu W_\mu^\top + d_{\text{logvar}} W_{\text{lv}}^\top$
        _, g = _hidden_layers_backward(params, "encoder", d_h_mu + d_h_logvar, enc.layers, activation, need_dx=False)
        grads.update(g)
    return grads


# ------------------------------------------------------------------------------------------------
# The importance-weighted bound as the objective: the IWAE (Burda et al. 2016, eq. 8 and section 3)
# ------------------------------------------------------------------------------------------------
def negative_iw_bound_and_grads(params, x, eps, *, likelihood="bernoulli", activation="relu",
                                decoder_variance="amortised", prior="standard", fast=True):
    r"""The batch mean of $-\mathcal{L}_k$ and its gradient at fixed noise ``eps`` (n, k, z_dim), where (Burda et al.
    eq. 8)

    .. math::

        \mathcal{L}_k(x) = \log \frac{1}{k} \sum_j w_j

        w_j = \frac{p(x \mid z_j)\, p(z_j)}{q(z_j \mid x)}, \quad z_j = \mu + \sigma \odot \epsilon_j

    and (section 3) $\nabla(-\mathcal{L}_k) = -\sum_j \tilde{w}_j \nabla \log w_j$, with the normalised weights
    $\tilde{w}_j = w_j / \sum_l w_l$. $k = 1$ is the ELBO with its KL term sampled (not in closed form). Standard
    prior and a decoder whose variance is a head (or Bernoulli) only. Returns (loss, grads) as
    :func:`negative_elbo_and_grads` does.
    """
    if prior != "standard" or decoder_variance in ("per-dimension", "shared"):
        raise ValueError("the IWAE objective is written for the standard prior and a decoder variance that is a "
                         "head of z (or a Bernoulli decoder)")
    xp = namespace(x)
    n, k, z_dim = eps.shape
    # ---- forward ----------------------------------------------------------------------------------------
    # $\log w_{ij}$ for every example $i$ and sample $j$
    mu, logvar, enc = encode(params, x, activation=activation)                          # (n, z_dim)
    std = xp.exp(0.5 * logvar)
    # $z_{ij} = \mu_i + \sigma_i \odot \epsilon_{ij}$
    z = xp.expand_dims(mu, axis=1) + xp.expand_dims(std, axis=1) * eps                  # (n, k, z_dim)
    outs, dec = decode(params, xp.reshape(z, (n * k, z_dim)), likelihood=likelihood, activation=activation,
                       decoder_variance=decoder_variance)
    x_rows = xp.reshape(xp.broadcast_to(xp.expand_dims(x, axis=1), (n, k, x.shape[1])), (n * k, x.shape[1]))
    # $\text{rec}_{ij} = -\log p(x_i \mid z_{ij})$
    rec, d_rec = _reconstruction_nll_and_grad(x_rows, outs, likelihood, fast)          # (n k,)
    # $\log p(z_{ij}) - \log q(z_{ij} \mid x_i) = -\tfrac{1}{2} \sum [z^2 - \epsilon^2 - \text{logvar}]$
    # (the $\log 2\pi$ terms cancel)
    log_p_over_q = -0.5 * xp.sum(z * z - eps * eps - xp.expand_dims(logvar, axis=1), axis=-1)      # (n, k)
    log_w = -xp.reshape(rec, (n, k)) + log_p_over_q
    # $\text{loss} = -\frac{1}{n} \sum_i [\operatorname{logsumexp}_j \log w_{ij} - \log k]$
    lse = logsumexp(log_w, axis=1, keepdims=True)                                       # (n, 1)
    # ---- backward ----------------------------------------------------------------------------------------
    # $\partial \text{loss} / \partial \log w_{ij} = -\tilde{w}_{ij} / n$
    c = xp.exp(log_w - lse) * (1.0 / n)                                                 # w~_ij / n, (n, k)
    c_rows = xp.reshape(c, (n * k, 1))
    # $\partial \text{loss} / \partial \text{outs}_{ij} = (\tilde{w}_{ij} / n) \, \partial \text{rec}_{ij} / \partial
    # \text{outs}_{ij}$, then back through the decoder
    d_outs = {name: d_rec[name] * c_rows for name in _heads(likelihood, decoder_variance)}
    d_z, grads = _decoder_backward(params, d_outs, dec, activation)                     # (n k, z_dim)
    # the prior's path: $\partial (-\log p(z)) / \partial z = z$, weighted likewise
    d_z = xp.reshape(d_z, (n, k, z_dim)) + xp.expand_dims(c, axis=2) * z
    # $\partial z / \partial \mu = 1$; $\partial z / \partial \text{logvar} = \epsilon \odot \sigma / 2$;
    # $\partial (+\log q) / \partial \text{logvar} = -\tfrac{1}{2}$ per sample, so $\sum_j -\tilde{w}_{ij} / (2n)$
    d_mu = xp.sum(d_z, axis=1)
    d_logvar = xp.sum(d_z * eps, axis=1) * (0.5 * std) - 0.5 * xp.sum(c, axis=1, keepdims=True)
    grads.update(_encoder_backward(params, d_mu, d_logvar, enc, activation))
    loss = float(get_backend().to_numpy(-xp.mean(lse[:, 0]))) + math.log(k)
    return loss, grads


# ------------------------------------------------------------------------------------------------
# The importance-weighted log-likelihood (Burda et al. 2016, eq. 8)
# ------------------------------------------------------------------------------------------------
def iw_log_likelihood(params, x, k, rng, *, max_rows=8192, progress=False, likelihood="bernoulli",
                      activation="relu", decoder_variance="amortised", prior="standard", fast=True):
    r"""The importance-weighted estimate of $\log p(x)$ with k samples from $q(z \mid x)$, per example (batch,):

    .. math::

        \log p(x) \approx \log \frac{1}{k} \sum_j w_j

        w_j = \frac{p(x \mid z_j)\, p(z_j)}{q(z_j \mid x)}, \quad z_j \sim q(z \mid x)

    a lower bound in expectation that tightens as k grows ($k = 1$: the ELBO). ``rng`` draws the noise (a
    :class:`refvae.backend.Generator`). Work goes in chunks of at most ``max_rows`` decoded rows (whole examples per
    chunk when k <= max_rows, else one example's samples in several chunks), so memory stays near
    ``max_rows * x_dim`` values times a few temporaries, whatever k; the noise is drawn chunk by chunk, walking the
    (example, sample) grid in row-major order.
    """
    config = dict(likelihood=likelihood, activation=activation, decoder_variance=decoder_variance, prior=prior,
                  fast=fast)
    xp = namespace(x)
    n = x.shape[0]
    examples_per_chunk = max(1, max_rows // k)        # whole examples per chunk when k <= max_rows
    samples_per_chunk = min(k, max_rows)              # else one example's k samples in several chunks
    starts = range(0, n, examples_per_chunk)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc=f"log-likelihood (k={k})", unit="chunk", leave=False)
    results = []
    for i0 in starts:
        xb = x[i0:min(i0 + examples_per_chunk, n), :]                                # (m, x_dim)
        mu, logvar, _ = encode(params, xb, activation=activation)                   # (m, z_dim)
        # $\log w_{ij}$ for the chunk's m examples and all k samples, (m, k)
        log_w = [_log_weights(params, xb, mu, logvar, min(samples_per_chunk, k - j0), rng, config)
                 for j0 in range(0, k, samples_per_chunk)]
        log_w = xp.concat(log_w, axis=1) if len(log_w) > 1 else log_w[0]
        # $\log p(x_i) \approx \operatorname{logsumexp}_j \log w_{ij} - \log k$
        results.append(logsumexp(log_w, axis=1) - math.log(k))
    return xp.concat(results) if len(results) > 1 else results[0]


def _log_weights(params, x, mu, logvar, s, rng, config):
    r"""$\log w_{ij} = \log p(x_i \mid z_{ij}) + \log p(z_{ij}) - \log q(z_{ij} \mid x_i)$ for s fresh samples per
    example, (m, s)."""
    B = get_backend()
    xp = namespace(x)
    m, z_dim = mu.shape
    mu3, logvar3 = xp.expand_dims(mu, axis=1), xp.expand_dims(logvar, axis=1)    # (m, 1, z_dim)
    # $\epsilon_{ij} \sim \mathcal{N}(0, I)$, (m, s, z_dim)
    eps = rng.normal((m, s, z_dim), B.dtype_name(x.dtype))
    # $z_{ij} = \mu_i + \sigma_i \odot \epsilon_{ij}$
    z = mu3 + xp.exp(0.5 * logvar3) * eps
    # $\log q(z_{ij} \mid x_i) = -\tfrac{1}{2} \sum [\log 2\pi + \text{logvar}_i + \epsilon_{ij}^2]$, (m, s)
    log_q = -0.5 * xp.sum(LOG_2PI + logvar3 + eps * eps, axis=-1)
    outs, _ = decode(params, xp.reshape(z, (m * s, z_dim)), **config)
    outs = {name: xp.reshape(o, (m, s, -1)) for name, o in outs.items()}         # (m, s, x_dim)
    x3 = xp.expand_dims(x, axis=1)                                               # (m, 1, x_dim)

    def log_px_z(a, b):                                                          # log p(x_i | z_ij), j in [a, b)
        return -reconstruction_nll(x3, {name: o[:, a:b, :] for name, o in outs.items()}, **config)

    block = max(1, 512 // m)
    if config["fast"]:      # blocks of samples on every core with NumPy (refvae.fast.map_blocks)
        parts = map_blocks(B, log_px_z, s, block)
    else:                   # the same blocks, one after the other
        parts = [log_px_z(a, min(a + block, s)) for a in range(0, s, block)]
    log_px_z_all = xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]                     # (m, s)
    # $\log w_{ij} = \log p(x_i \mid z_{ij}) + \log p(z_{ij}) - \log q(z_{ij} \mid x_i)$
    return log_px_z_all + log_prior(params, z, **config) - log_q


# ------------------------------------------------------------------------------------------------
# Layers on the flat dict: h' = act(h W + b), and their backward passes
# ------------------------------------------------------------------------------------------------
def _depth(params, prefix):
    """The number of hidden layers ``f"{prefix}.<l>.W"``, l = 0, 1, ..."""
    depth = 0
    while f"{prefix}.{depth}.W" in params:
        depth += 1
    return depth


def _affine(params, name, h):
    """out = h W + b, with W = params[name + ".W"] (in, out) and b = params[name + ".b"] (out,)."""
    return affine(h, params[f"{name}.W"], params[f"{name}.b"])


def _affine_backward(params, name, d_out, h, need_dh=True):
    """From d_out = d loss / d out: (d_h, grads) with d_W = h^T d_out, d_b = sum_batch d_out, d_h = d_out W^T,
    the grads keyed ``name + ".W"`` and ``name + ".b"``."""
    d_h, g = affine_backward(d_out, h, params[f"{name}.W"], need_dh)
    return d_h, {f"{name}.{k}": v for k, v in g.items()}


def _hidden_layers(params, prefix, h, activation):
    """h <- act(h W_l + b_l) for every hidden layer l of ``prefix``; returns h and the layers' caches."""
    act, layers = make_activation(activation), []
    for i in range(_depth(params, prefix)):
        h_next, c_act = act.forward(_affine(params, f"{prefix}.{i}", h))
        layers.append((h, c_act))
        h = h_next
    return h, layers


def _hidden_layers_backward(params, prefix, d_h, layers, activation, need_dx=True):
    """From d_h = d loss / d (the last hidden layer): d loss / d (the input) and the layers' grads."""
    act, grads = make_activation(activation), {}
    for i in reversed(range(len(layers))):
        h_in, c_act = layers[i]
        d_pre, _ = act.backward(d_h, c_act)                    # d loss / d (h_in W + b)
        d_h, g = _affine_backward(params, f"{prefix}.{i}", d_pre, h_in, need_dh=need_dx or i > 0)
        grads.update(g)
    return d_h, grads
