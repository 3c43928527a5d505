"""The Gaussian variational autoencoder, with its backward pass written out by hand.

Model (Kingma & Welling 2014; Rezende, Mohamed & Wierstra 2014)::

    prior            p(z)       = N(0, I)                                    z: (batch, z_dim)
    encoder          q(z | x)   = N(mu(x), diag(exp(logvar(x))))             mu, logvar: (batch, z_dim)
    decoder          p(x | z)   = Bernoulli(sigmoid(logits(z)))              logits: (batch, x_dim)
                             or N(mean(z), diag(exp(dec_logvar(z))))         (likelihood="gaussian")
    reparameterise   z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))
    loss    = mean over the batch of  -ELBO  (one sample of eps), in nats per example

Backward pass (for the batch mean; ``n`` the batch size; ``rec = -log p(x|z)``)::

    d loss / d logits  = (sigmoid(logits) - x) / n                      (Bernoulli)
    d loss / d z       = decoder backward of the above
    d loss / d mu      = d loss/d z              + mu / n                 (dz/dmu = 1;  dKL/dmu = mu)
    d loss / d logvar  = d loss/d z * eps * std/2 + (exp(logvar) - 1) / (2n)
                                                  (dz/dlogvar = eps * std / 2; dKL/dlogvar = (e^logvar - 1)/2)

Every derivative is checked against central finite differences in float64 by the test suite and
by ``refvae gradcheck``.

The importance-weighted log-likelihood estimate (Burda, Grosse & Salakhutdinov 2015, eq. 8)::

    log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i | x),    z_i ~ q(z | x)

References
----------
D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
D. J. Rezende, S. Mohamed, D. Wierstra, "Stochastic Backpropagation and Approximate Inference in
Deep Generative Models", ICML 2014.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, arXiv:1509.00519.
"""

from __future__ import annotations

import math

from ..backend import get_backend
from ..checkpoint import Checkpointable, register_model
from ..validation import DataError, as_data, check_positive_int
from ..fast import bernoulli_nll_with_grad, map_blocks
from ..layers import ACTIVATIONS, MLP, Linear, ParameterSlots
from ..numerics import (
    LOG_2PI,
    bernoulli_log_prob,
    gaussian_log_prob,
    gaussian_log_prob_grad,
    kl_normal,
    kl_normal_grad,
    kl_standard_normal,
    kl_standard_normal_grad,
    logsumexp,
    sigmoid,
)

from . import aggregate

__all__ = ["DECODER_VARIANCES", "DecoderNoise", "GaussianVAE", "LIKELIHOODS", "LearnedPrior", "PRIORS", "SAMPLE_SOURCES"]

LIKELIHOODS = ("bernoulli", "gaussian")
PRIORS = ("standard", "learned")
DECODER_VARIANCES = ("amortised", "per-dimension", "shared")   # or a positive float: a fixed variance
SAMPLE_SOURCES = ("prior", "aggregate", "aggregate-full", "aggregate-mixture")   # where sample() draws z from


class LearnedPrior:
    """A learned diagonal-Gaussian prior p(z) = N(mean, diag exp(logvar)), parameters ``"mean"`` and
    ``"logvar"`` of shape ``(z_dim,)``, initialised to the standard normal (zeros).

    It is redundant: :func:`refvae.absorb_prior` folds it into the encoder's heads and the decoder's first
    layer, giving a standard-prior model with the same ELBO for every x and every noise draw.
    """

    def __init__(self, z_dim: int, dtype="float32"):
        B = get_backend()
        self.params = {"mean": B.zeros((z_dim,), dtype), "logvar": B.zeros((z_dim,), dtype)}


class DecoderNoise:
    """A Gaussian decoder's log-variance when it does not depend on z: parameter ``"logvar"`` of shape ``(x_dim,)``
    (``decoder_variance="per-dimension"``: factor analysis when the decoder is linear) or ``(1,)`` (``"shared"``:
    probabilistic PCA), initialised to 0 (unit variance)."""

    def __init__(self, size: int, dtype="float32"):
        self.params = {"logvar": get_backend().zeros((size,), dtype)}


@register_model
class GaussianVAE(ParameterSlots, Checkpointable):
    """A VAE with a diagonal-Gaussian encoder, an N(0, I) prior and a Bernoulli or Gaussian decoder.

    Parameters
    ----------
    x_dim : int
        Width of the data, e.g. 784 for MNIST.
    z_dim : int
        Number of latent dimensions.
    hidden : tuple of int
        Hidden layer widths of the encoder; the decoder mirrors them (``(400,)``: 784-400-z-400-784).
    decoder_hidden : tuple of int, optional
        The decoder's hidden widths from z outwards, when they should differ from the mirror of ``hidden``.
    likelihood : {"bernoulli", "gaussian"}
        The decoder's distribution. "bernoulli" needs data in [0, 1]; "gaussian" gives a per-pixel
        mean and log-variance (unbounded: on data with constant pixels the variance can shrink
        without limit, so prefer "bernoulli" for MNIST).
    decoder_variance : {"amortised", "per-dimension", "shared"} or float
        The Gaussian decoder's variance: "amortised" (the default) a log-variance head of z; "per-dimension" a
        learned log-variance per pixel, constant in z (``decoder.noise.logvar`` (x_dim,); with ``hidden=()`` the
        model is factor analysis); "shared" one learned log-variance (``decoder.noise.logvar`` (1,); with
        ``hidden=()``: probabilistic PCA); a positive float: that variance, fixed (the "MSE" VAE).
        Only for ``likelihood="gaussian"``.
    activation : {"relu", "tanh", "softplus", "sigmoid"}
    prior : {"standard", "learned"}
        "standard": p(z) = N(0, I). "learned": p(z) = N(m, diag exp(v)) with parameters ``"prior.mean"``
        and ``"prior.logvar"`` (redundant with the adjacent layers; see :func:`refvae.absorb_prior`).
    seed : int
        Seeds the initial parameters (drawn on the host: identical on every backend) and the
        generator for the reparameterisation noise (on the device).
    dtype : {"float32", "float64"}
        float32 for training, float64 for gradient checks.

    Attributes
    ----------
    params : dict
        Name -> array, e.g. ``"encoder.0.W"`` ``(784, 400)``, ``"encoder.mu.W"`` ``(400, z_dim)``,
        ``"decoder.logits.W"`` ``(400, 784)``.
    rng : refvae.backend.Generator
        The noise generator used when ``eps`` is not given (``fit`` reseeds it every epoch).
    last_terms : dict
        ``{"rec": ..., "kl": ...}``: the batch means of the two terms of the last ``loss_and_grads``.
    """

    def __init__(self, x_dim, z_dim, hidden=(400,), likelihood="bernoulli", activation="relu", seed=0,
                 dtype="float32", prior="standard", decoder_hidden=None, decoder_variance="amortised"):
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.z_dim = check_positive_int(z_dim, "z_dim")
        if isinstance(hidden, int):
            hidden = (hidden,)
        self.hidden = tuple(check_positive_int(h, "hidden width") for h in hidden)
        if isinstance(decoder_hidden, int):
            decoder_hidden = (decoder_hidden,)
        self.decoder_hidden = tuple(reversed(self.hidden)) if decoder_hidden is None else \
            tuple(check_positive_int(h, "decoder hidden width") for h in decoder_hidden)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}: choose one of {', '.join(LIKELIHOODS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if prior not in PRIORS:
            raise ValueError(f"unknown prior {prior!r}: choose one of {', '.join(PRIORS)}")
        self.decoder_variance = _check_decoder_variance(decoder_variance, likelihood)
        self.likelihood, self.activation, self.seed, self.prior = likelihood, activation, int(seed), prior
        self.backend = B = get_backend()
        self.xp = B.xp
        self.dtype_name = B.dtype_name(dtype)
        self.dtype = B.dtype(dtype)

        init = B.rng(self.seed, host=True)
        h_enc = self.hidden[-1] if self.hidden else self.x_dim
        h_dec = self.decoder_hidden[-1] if self.decoder_hidden else self.z_dim
        self.encoder = MLP((self.x_dim, *self.hidden), activation, rng=init, dtype=dtype)
        self.enc_mu = Linear(h_enc, self.z_dim, init, dtype)
        self.enc_logvar = Linear(h_enc, self.z_dim, init, dtype)
        self.decoder = MLP((self.z_dim, *self.decoder_hidden), activation, rng=init, dtype=dtype)
        if likelihood == "bernoulli":
            self.dec_heads = {"logits": Linear(h_dec, self.x_dim, init, dtype)}
        elif self.decoder_variance == "amortised":
            self.dec_heads = {"mean": Linear(h_dec, self.x_dim, init, dtype),
                              "logvar": Linear(h_dec, self.x_dim, init, dtype)}
        else:
            self.dec_heads = {"mean": Linear(h_dec, self.x_dim, init, dtype)}
        self.decoder_noise = None                       # the log-variance when it does not depend on z
        if self.decoder_variance in ("per-dimension", "shared"):
            self.decoder_noise = DecoderNoise(self.x_dim if self.decoder_variance == "per-dimension" else 1, dtype)
        self.learned_prior = LearnedPrior(self.z_dim, dtype) if prior == "learned" else None
        self.rng = B.rng(self.seed)
        self.last_terms = {}
        # the aggregate posterior last measured by refvae.aggregate_posterior (or prior_mismatch), for sample(source=...)
        self.aggregate_moments = None      # (mean, var): host float64 (z_dim,) each
        self.aggregate_covariance = None   # host float64 (z_dim, z_dim)
        self.aggregate_components = None   # (mu, logvar) of every example, device (n, z_dim) each

    # ----------------------------------------------------------------------------------------
    # Parameters
    # ----------------------------------------------------------------------------------------
    def _modules(self):
        yield "encoder", self.encoder
        yield "encoder.mu", self.enc_mu
        yield "encoder.logvar", self.enc_logvar
        yield "decoder", self.decoder
        for name, head in self.dec_heads.items():
            yield f"decoder.{name}", head
        if self.decoder_noise is not None:
            yield "decoder.noise", self.decoder_noise
        if self.learned_prior is not None:
            yield "prior", self.learned_prior

    def _slots(self):
        """(flat name, owning dict, key) for every parameter array."""
        for prefix, module in self._modules():
            owners = [(f"{prefix}.{i}", lin.params) for i, lin in enumerate(module.linears)] \
                if isinstance(module, MLP) else [(prefix, module.params)]
            for owner_name, owner in owners:
                for key in owner:
                    yield f"{owner_name}.{key}", owner, key

    @property
    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable)."""
        config = {"x_dim": self.x_dim, "z_dim": self.z_dim, "hidden": list(self.hidden),
                  "likelihood": self.likelihood, "activation": self.activation, "seed": self.seed,
                  "dtype": self.dtype_name}
        if self.prior != "standard":
            config["prior"] = self.prior
        if self.decoder_hidden != tuple(reversed(self.hidden)):
            config["decoder_hidden"] = list(self.decoder_hidden)
        if self.decoder_variance != "amortised":
            config["decoder_variance"] = self.decoder_variance
        return config

    # ----------------------------------------------------------------------------------------
    # Inputs
    # ----------------------------------------------------------------------------------------
    def validate_data(self, x, name="x"):
        """``x`` as a checked backend array (batch, x_dim) of the model's dtype; clear errors otherwise."""
        return as_data(x, self.x_dim, self.dtype_name, unit_interval=self.likelihood == "bernoulli", name=name)

    _data = validate_data

    def _latent(self, z, name="z"):
        return as_data(z, self.z_dim, self.dtype_name, name=name)

    def _noise(self, n, eps):
        if eps is None:
            return self.rng.normal((n, self.z_dim), self.dtype_name)
        eps = as_data(eps, self.z_dim, self.dtype_name, name="eps")
        if eps.shape[0] != n:
            raise DataError(f"eps has {eps.shape[0]} rows but x has {n}: pass eps of shape ({n}, {self.z_dim})")
        return eps

    # ----------------------------------------------------------------------------------------
    # Forward pieces
    # ----------------------------------------------------------------------------------------
    def _encode(self, x):
        h, c_enc = self.encoder.forward(x)               # (batch, h_enc)
        mu, c_mu = self.enc_mu.forward(h)                # (batch, z_dim)
        logvar, c_lv = self.enc_logvar.forward(h)        # (batch, z_dim)
        return mu, logvar, (c_enc, c_mu, c_lv)

    def _decode(self, z):
        """Decoder outputs as a dict ({"logits"} or {"mean", "logvar"}), each (batch, x_dim)."""
        h, c_dec = self.decoder.forward(z)               # (batch, h_dec)
        outs, c_heads = {}, {}
        for name, head in self.dec_heads.items():
            outs[name], c_heads[name] = head.forward(h)  # (batch, x_dim)
        if self.likelihood == "gaussian" and "logvar" not in outs:
            outs["logvar"] = self._decoder_logvar(outs["mean"])
        return outs, (c_dec, c_heads)

    def _decoder_logvar(self, mean):
        """The log-variance of a decoder whose variance does not depend on z, shaped like ``mean``."""
        xp = self.xp
        if self.decoder_noise is not None:
            return xp.zeros_like(mean) + self.decoder_noise.params["logvar"]       # (x_dim,) or (1,), broadcast
        return xp.zeros_like(mean) + math.log(self.decoder_variance)                # a fixed variance

    def _reconstruction_nll(self, x, outs):
        """-log p(x | z) per example, (batch,)."""
        if self.likelihood == "bernoulli":
            return -bernoulli_log_prob(x, outs["logits"])
        return -gaussian_log_prob(x, outs["mean"], outs["logvar"])

    def _kl(self, mu, logvar):
        """KL(q(z|x) || p(z)) per example, (batch,)."""
        if self.learned_prior is None:
            return kl_standard_normal(mu, logvar)
        p = self.learned_prior.params
        return kl_normal(mu, logvar, p["mean"], p["logvar"])

    def _prior_moments(self):
        """(mean, logvar) of p(z), each (z_dim,), or (None, None) for N(0, I)."""
        if self.learned_prior is None:
            return None, None
        return self.learned_prior.params["mean"], self.learned_prior.params["logvar"]

    def _negative_elbo_terms(self, x, eps):
        """(rec, kl), each (batch,): -log p(x|z) and KL(q(z|x) || p(z)) at z = mu + sigma * eps (no gradients;
        ``loss_and_grads`` writes the same forward pass out beside its backward pass)."""
        mu, logvar, _ = self._encode(x)
        z = mu + self.xp.exp(0.5 * logvar) * eps          # reparameterisation
        outs, _ = self._decode(z)
        return self._reconstruction_nll(x, outs), self._kl(mu, logvar)

    # ----------------------------------------------------------------------------------------
    # Training objective
    # ----------------------------------------------------------------------------------------
    def loss_and_grads(self, x, eps=None):
        """Batch mean of the negative ELBO and its gradient with respect to every parameter.

        Parameters
        ----------
        x : array (batch, x_dim)
        eps : array (batch, z_dim), optional
            The reparameterisation noise; fixing it makes the loss a deterministic function of
            the parameters (for gradient checks). Drawn from ``self.rng`` when omitted.

        Returns
        -------
        loss : float
            mean over the batch of -ELBO, nats per example.
        grads : dict
            d loss / d param, with exactly the keys of ``params``.
        """
        xp = self.xp
        x = self._data(x)                                              # (n, x_dim)
        n = x.shape[0]
        eps = self._noise(n, eps)                                      # (n, z_dim), eps ~ N(0, I)

        # ---- forward: loss = mean_n [ -log p(x|z) + KL(q(z|x) || p(z)) ],  z = mu + sigma * eps --------------
        h_enc, c_enc = self.encoder.forward(x)                         # (n, h_enc)
        mu, c_mu = self.enc_mu.forward(h_enc)                          # (n, z_dim)
        logvar, c_logvar = self.enc_logvar.forward(h_enc)              # (n, z_dim), log sigma^2
        std = xp.exp(0.5 * logvar)                                     # sigma
        z = mu + std * eps                                             # reparameterisation, (n, z_dim)
        h_dec, c_dec = self.decoder.forward(z)                         # (n, h_dec)
        outs, c_outs = {}, {}
        for name, head in self.dec_heads.items():                      # "logits", or "mean" and "logvar"
            outs[name], c_outs[name] = head.forward(h_dec)             # (n, x_dim)
        if self.likelihood == "gaussian" and "logvar" not in outs:     # a variance that does not depend on z
            outs["logvar"] = self._decoder_logvar(outs["mean"])        # (n, x_dim)
        if self.likelihood == "bernoulli":                             # rec = -log p(x|z) and d rec / d outs
            rec, d_rec_d_logits = bernoulli_nll_with_grad(x, outs["logits"])   # sigmoid(l) - x (refvae.fast)
            d_rec = {"logits": d_rec_d_logits}
        else:
            rec = -gaussian_log_prob(x, outs["mean"], outs["logvar"])
            d_log_p_d_mean, d_log_p_d_logvar = gaussian_log_prob_grad(x, outs["mean"], outs["logvar"])
            d_rec = {"mean": -d_log_p_d_mean, "logvar": -d_log_p_d_logvar}
        kl = self._kl(mu, logvar)                                      # (n,)

        # ---- backward: grads[name] = d loss / d param, and every d_<v> below is d loss / d v -----------------
        inv_n = 1.0 / n                                                # loss is a mean over the n examples
        grads = {}
        d_h_dec = None
        if self.decoder_noise is not None:                             # d loss / d logvar, summed where it is shared
            d_noise = xp.sum(d_rec["logvar"], axis=0) * inv_n          # (x_dim,)
            grads["decoder.noise.logvar"] = d_noise if self.decoder_variance == "per-dimension" \
                else xp.reshape(xp.sum(d_noise), (1,))
        for name, head in self.dec_heads.items():
            d_out = d_rec[name] * inv_n                                # (n, x_dim)
            d_h, g = head.backward(d_out, c_outs[name])                # (n, h_dec)
            d_h_dec = d_h if d_h_dec is None else d_h_dec + d_h
            grads.update({f"decoder.{name}.{k}": v for k, v in g.items()})
        d_z, g = self.decoder.backward(d_h_dec, c_dec)                 # (n, z_dim)
        grads.update({f"decoder.{k}": v for k, v in g.items()})
        if self.learned_prior is None:                                 # KL(N(mu, sigma^2) || N(0, 1)) per dimension
            d_kl_d_mu, d_kl_d_logvar = kl_standard_normal_grad(mu, logvar)   # mu, (e^logvar - 1) / 2
        else:
            pm, plv = self._prior_moments()
            d_kl_d_mu, d_kl_d_logvar, d_kl_d_pm, d_kl_d_plv = kl_normal_grad(mu, logvar, pm, plv)
            grads["prior.mean"] = xp.sum(d_kl_d_pm, axis=0) * inv_n   # (z_dim,)
            grads["prior.logvar"] = xp.sum(d_kl_d_plv, axis=0) * inv_n
        d_mu = d_z + d_kl_d_mu * inv_n                                 # dz/dmu = 1
        d_logvar = d_z * eps * (0.5 * std) + d_kl_d_logvar * inv_n     # dz/dlogvar = eps * sigma / 2
        d_h_mu, g = self.enc_mu.backward(d_mu, c_mu)                   # (n, h_enc)
        grads.update({f"encoder.mu.{k}": v for k, v in g.items()})
        d_h_logvar, g = self.enc_logvar.backward(d_logvar, c_logvar)   # (n, h_enc)
        grads.update({f"encoder.logvar.{k}": v for k, v in g.items()})
        _, g = self.encoder.backward(d_h_mu + d_h_logvar, c_enc, need_dx=False)   # no gradient for the data
        grads.update({f"encoder.{k}": v for k, v in g.items()})

        # One device -> host transfer, after the whole backward pass is queued (on a GPU it waits for the step).
        terms = self.backend.to_numpy(xp.stack([xp.mean(rec), xp.mean(kl)]))
        self.last_terms = {"rec": float(terms[0]), "kl": float(terms[1])}
        return float(terms[0] + terms[1]), grads

    def loss(self, x, eps=None) -> float:
        """Batch mean of the negative ELBO (no gradients), nats per example."""
        x = self._data(x)
        rec, kl = self._negative_elbo_terms(x, self._noise(x.shape[0], eps))
        return float(self.xp.mean(rec + kl))

    # ----------------------------------------------------------------------------------------
    # Public model API
    # ----------------------------------------------------------------------------------------
    def encode(self, x):
        """(mu, logvar) of q(z | x), each (batch, z_dim); logvar is the log of the variance."""
        mu, logvar, _ = self._encode(self._data(x))
        return mu, logvar

    def decode(self, z):
        """Decoder output for z (batch, z_dim): logits (batch, x_dim), or (mean, logvar) if Gaussian."""
        outs, _ = self._decode(self._latent(z))
        return outs["logits"] if self.likelihood == "bernoulli" else (outs["mean"], outs["logvar"])

    def _decoder_mean(self, outs):
        return sigmoid(outs["logits"]) if self.likelihood == "bernoulli" else outs["mean"]

    def elbo(self, x, eps=None):
        """Per-example ELBO (one sample of eps), shape (batch,), nats."""
        x = self._data(x)
        rec, kl = self._negative_elbo_terms(x, self._noise(x.shape[0], eps))
        return -(rec + kl)

    def elbo_terms(self, x, eps=None):
        """Per-example (reconstruction log-likelihood, KL), each (batch,): ELBO = rec - kl."""
        x = self._data(x)
        rec, kl = self._negative_elbo_terms(x, self._noise(x.shape[0], eps))
        return -rec, kl

    def log_likelihood(self, x, k=5000, seed=None, max_rows=8192, progress=False):
        """Importance-weighted estimate of log p(x) with k samples from q(z|x), per example (batch,).

        log p(x) ~= logsumexp_i [log p(x | z_i) + log p(z_i) - log q(z_i | x)] - log k
        (Burda et al. 2015). It is a lower bound in expectation that tightens as k grows (k = 1 is the ELBO).

        Work is done in chunks of at most ``max_rows`` decoded rows, so memory stays near
        ``max_rows * x_dim * 4 bytes`` times a few temporaries (~200 MB at the default), whatever k.
        """
        xp, B = self.xp, self.backend
        k = check_positive_int(k, "k")
        max_rows = check_positive_int(max_rows, "max_rows")
        x = self._data(x)
        n = x.shape[0]
        rng = self.rng if seed is None else B.rng(seed)
        examples_per_chunk = max(1, max_rows // k)        # whole examples per chunk when k <= max_rows
        samples_per_chunk = min(k, max_rows)              # else one example's k samples in several chunks
        results = []
        starts = range(0, n, examples_per_chunk)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=f"log-likelihood (k={k})", unit="chunk", leave=False)
        for i0 in starts:
            xb = x[i0:min(i0 + examples_per_chunk, n), :]
            m = xb.shape[0]
            mu, logvar, _ = self._encode(xb)
            mu3, logvar3 = xp.expand_dims(mu, axis=1), xp.expand_dims(logvar, axis=1)   # (m, 1, z_dim)
            std3 = xp.exp(0.5 * logvar3)
            x3 = xp.expand_dims(xb, axis=1)                                              # (m, 1, x_dim)
            log_w = []
            for j0 in range(0, k, samples_per_chunk):
                s = min(samples_per_chunk, k - j0)
                eps = rng.normal((m, s, self.z_dim), self.dtype_name)                    # (m, s, z_dim)
                z = mu3 + std3 * eps
                log_q = -0.5 * xp.sum(LOG_2PI + logvar3 + eps * eps, axis=-1)            # log q(z|x), (m, s)
                log_prior = self._log_prior(z)                                            # log p(z), (m, s)
                outs, _ = self._decode(xp.reshape(z, (m * s, self.z_dim)))
                outs = {name: xp.reshape(o, (m, s, self.x_dim)) for name, o in outs.items()}
                # log p(x | z_i) over blocks of the s samples (on every core with NumPy), (m, s)
                parts = map_blocks(B, lambda a, b: -self._reconstruction_nll(
                    x3, {name: o[:, a:b, :] for name, o in outs.items()}), s, block=max(1, 512 // m))
                log_px_z = xp.concat(parts, axis=1) if len(parts) > 1 else parts[0]
                log_w.append(log_px_z + log_prior - log_q)
            log_w = xp.concat(log_w, axis=1) if len(log_w) > 1 else log_w[0]            # (m, k)
            results.append(logsumexp(log_w, axis=1) - math.log(k))
        return xp.concat(results) if len(results) > 1 else results[0]

    def _log_prior(self, z):
        """log p(z), summed over the last axis."""
        pm, plv = self._prior_moments()
        if pm is None:
            return -0.5 * self.xp.sum(LOG_2PI + z * z, axis=-1)
        return gaussian_log_prob(z, pm, plv)

    def sample(self, n, mean=True, seed=None, source="prior"):
        """n draws from the model, (n, x_dim): z from ``source`` (:meth:`sample_latent`), then the decoder's mean
        (default) or, with ``mean=False``, a sample of p(x|z)."""
        n = check_positive_int(n, "n")
        rng = self.rng if seed is None else self.backend.rng(seed)
        outs, _ = self._decode(self._sample_latent(n, source, rng))
        return self._draw(outs, mean, rng)

    def sample_latent(self, n, seed=None, source="prior"):
        """n latent draws z, (n, z_dim), from ``source``:

        - ``"prior"``: z ~ p(z), the model as trained;
        - ``"aggregate"``: z ~ N(m, diag s^2), the aggregate posterior's moments (law of total variance);
        - ``"aggregate-full"``: z ~ N(m, C), with its full covariance C = <diag sigma^2(x)> + Cov_x[mu(x)];
        - ``"aggregate-mixture"``: the exact aggregate (1/n) sum_i q(z|x_i): pick an example i uniformly, then
          z ~ q(z|x_i) = N(mu_i, diag sigma_i^2).

        The aggregate sources use what :func:`refvae.aggregate_posterior` (or ``prior_mismatch``) last measured
        on this model: call it on the training data first, and again after more training.
        """
        n = check_positive_int(n, "n")
        return self._sample_latent(n, source, self.rng if seed is None else self.backend.rng(seed))

    def _sample_latent(self, n, source, rng):
        xp = self.xp
        if source not in SAMPLE_SOURCES:
            raise ValueError(f"source must be one of {', '.join(map(repr, SAMPLE_SOURCES))}, got {source!r}")
        if source != "prior" and self.aggregate_moments is None:
            raise ValueError(f"sample(source={source!r}) needs the aggregate posterior: call "
                             "refvae.aggregate_posterior(model, X) on the training data first")
        if source == "aggregate-mixture":                   # x_i uniformly at random, then z ~ q(z|x_i)
            return aggregate.draw_from_mixture(rng, *self.aggregate_components, n)
        eps = rng.normal((n, self.z_dim), self.dtype_name)
        if source == "prior":
            pm, plv = self._prior_moments()
            return eps if pm is None else pm + xp.exp(0.5 * plv) * eps
        m = self.backend.asarray(self.aggregate_moments[0], dtype=self.dtype_name)
        if source == "aggregate":
            sd = xp.sqrt(self.backend.asarray(self.aggregate_moments[1], dtype=self.dtype_name))
            return m + sd * eps                                                       # N(m, diag var)
        # C = <diag sigma^2> + Cov_x[mu] is positive definite (every sigma^2 > 0): C = L L^T, in float64
        L = xp.linalg.cholesky(self.backend.asarray(self.aggregate_covariance, dtype="float64"))
        return m + eps @ xp.astype(L, eps.dtype).T                                    # N(m, L L^T)

    def _draw(self, outs, mean, rng):
        xp = self.xp
        if mean:
            return self._decoder_mean(outs)
        if self.likelihood == "bernoulli":
            return rng.bernoulli(sigmoid(outs["logits"]))
        return outs["mean"] + xp.exp(0.5 * outs["logvar"]) * rng.normal(outs["mean"].shape, self.dtype_name)

    def reconstruct(self, x):
        """The decoder's mean at z = mu(x), (batch, x_dim): Bernoulli probabilities or Gaussian means."""
        mu, _, _ = self._encode(self._data(x))
        outs, _ = self._decode(mu)
        return self._decoder_mean(outs)

    def epoch_diagnostics(self, x) -> dict:
        """Numbers ``fit`` records after every epoch on a fixed subset of the training data:
        the aggregate posterior's mismatch with the prior (diagonal and full-covariance KL, nats) and
        the number of active units (see :func:`refvae.prior_mismatch`)."""
        model = self if self.prior == "standard" else aggregate.absorb_prior(self)
        r = aggregate.prior_mismatch(model, x)
        return {"mismatch_kl": r.kl_diag, "mismatch_kl_full": r.kl_full, "active_units": r.n_active}

    def align_to_prior(self, x) -> None:
        """Align the aggregate posterior over x (n, x_dim) to N(0, I) in place (:func:`refvae.align_to_prior`);
        ``fit(..., align="init" | "epoch")`` calls it."""
        aggregate.align_to_prior(self, x, inplace=True)

    # ----------------------------------------------------------------------------------------
    # Checkpoints
    # ----------------------------------------------------------------------------------------
    def checkpoint_arrays(self) -> dict:
        """Host copies of the parameters, named ``"model/<param>"``."""
        return {f"model/{k}": self.backend.to_numpy(v, copy=True) for k, v in self.params.items()}

    def __repr__(self):
        prior = f", prior={self.prior!r}" if self.prior != "standard" else ""
        return (f"GaussianVAE(x_dim={self.x_dim}, z_dim={self.z_dim}, hidden={self.hidden}, "
                f"likelihood={self.likelihood!r}, activation={self.activation!r}{prior}, dtype={self.dtype_name!r})")


def _check_decoder_variance(value, likelihood):
    """"amortised", "per-dimension", "shared" or a positive float (Gaussian likelihood only)."""
    if isinstance(value, str):
        if value not in DECODER_VARIANCES:
            raise ValueError(f"unknown decoder_variance {value!r}: choose one of {', '.join(DECODER_VARIANCES)}, "
                             "or a positive float for a fixed variance")
        if likelihood != "gaussian" and value != "amortised":
            raise ValueError(f"decoder_variance={value!r} needs likelihood='gaussian' (a Bernoulli decoder has none)")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"decoder_variance must be one of {', '.join(DECODER_VARIANCES)} or a positive float, "
                         f"got {value!r}")
    if likelihood != "gaussian":
        raise ValueError("a fixed decoder_variance needs likelihood='gaussian' (a Bernoulli decoder has none)")
    return float(value)
