"""The Gaussian VAE as configuration around its mathematics: the equations are in :mod:`refvae.vae.elbo`.

:class:`GaussianVAE` holds the configuration (checked once, here), the parameters (layers that own their arrays,
seen as one flat dict ``params``), the random generators, sampling and checkpoints. Every number it computes comes
from a pure function of ``params`` in ``elbo.py`` (Kingma & Welling 2014; Burda et al. 2016):

    loss_and_grads               ->  elbo.negative_elbo_and_grads     (-ELBO and its gradient, one sample of eps)
    loss, elbo, elbo_terms       ->  elbo.negative_elbo               (the same forward pass, elbo.forward)
    encode, decode, reconstruct  ->  elbo.encode, elbo.decode
    log_likelihood               ->  elbo.iw_log_likelihood           (importance-weighted, Burda et al. eq. 8)
    sample(source="aggregate...", aggregate=agg)  ->  agg.draw        (refvae.vae.aggregate.AggregatePosterior)

Every method that draws random numbers takes ``rng`` (or ``seed``) and falls back on the model's own generator
``rng`` only when neither is given.

References
----------
D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, arXiv:1509.00519.
"""

from __future__ import annotations

import math

from ..backend import get_backend
from ..checkpoint import Checkpointable
from ..estimator import Estimator, check_training_settings
from ..layers import ACTIVATIONS, MLP, Linear, ParameterSlots
from ..numerics import sigmoid
from ..optim import Adam
from ..validation import DataError, as_data, check_positive_int
from . import aggregate, elbo

__all__ = ["DECODER_VARIANCES", "DecoderNoise", "GaussianVAE", "LIKELIHOODS", "LearnedPrior", "PRIORS", "SAMPLE_SOURCES"]

LIKELIHOODS = ("bernoulli", "gaussian")
PRIORS = ("standard", "learned")
DECODER_VARIANCES = ("amortised", "per-dimension", "shared")   # or a positive float: a fixed variance
SAMPLE_SOURCES = ("prior", *aggregate.AGGREGATE_SOURCES)        # where sample() draws z from


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


class GaussianVAE(Estimator, ParameterSlots, Checkpointable):
    """A VAE with a diagonal-Gaussian encoder, an N(0, I) prior and a Bernoulli or Gaussian decoder.

    Also a scikit-learn estimator (:mod:`refvae.estimator`): ``fit(X)`` trains a fresh model with ``refvae.fit``
    (Adam at ``learning_rate``, ``epochs`` epochs of ``batch_size``, the data as given), ``partial_fit(X)`` one more
    pass over X, ``transform(X)`` = the posterior mean mu(x) of q(z | x), (n, z_dim), and ``score_samples(X)`` =
    the importance-weighted estimate of log p(x) per row with k = SCORE_SAMPLES_K samples (``log_likelihood``; the
    noise from a fresh generator seeded by ``seed``: for another k call ``log_likelihood`` itself).

    Parameters
    ----------
    x_dim : int, optional
        Width of the data, e.g. 784 for MNIST; None: learnt from the data at the first ``fit`` (``n_features_in_``).
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
    fast : bool
        The one choice between the fast forms and the textbook ones, made here and passed to every function of
        :mod:`refvae.vae.elbo`: the fused Bernoulli term and its gradient (``numerics.bernoulli_nll_with_grad``, one
        e^{-|l|} instead of two) and the IW estimate's blocks on every core (``fast.map_blocks``). ``False``: the
        textbook forms, equal to 1e-12 in float64.
    objective : {"elbo", "iwae"}
        What ``loss_and_grads`` minimises: -ELBO (one sample, the KL in closed form) or the IWAE's -L_k, the
        importance-weighted bound with ``iwae_k`` samples (Burda et al. 2016; ``elbo.negative_iw_bound_and_grads``;
        standard prior only). ``loss``, ``elbo`` and ``log_likelihood`` are the same for both.
    iwae_k : int
        k of the IWAE objective (unused for "elbo").
    epochs, batch_size, learning_rate
        How the estimator's ``fit`` and ``partial_fit`` train (``refvae.fit`` takes them as its arguments).

    Attributes
    ----------
    params : dict
        Name -> array, e.g. ``"encoder.0.W"`` ``(784, 400)``, ``"encoder.mu.W"`` ``(400, z_dim)``,
        ``"decoder.logits.W"`` ``(400, 784)``.
    rng : refvae.backend.Generator
        The default generator: every method that draws takes ``rng`` (or ``seed``) and uses this one only when
        neither is given.
    last_terms : dict
        ``{"rec": ..., "kl": ...}``: the batch means of the two terms of the last ``loss_and_grads``.
    """

    SCORE_SAMPLES_K = 1000      # importance samples per example of score_samples

    def __init__(self, x_dim=None, z_dim=20, hidden=(400,), likelihood="bernoulli", activation="relu", seed=0,
                 dtype="float32", prior="standard", decoder_hidden=None, decoder_variance="amortised", fast=True,
                 objective="elbo", iwae_k=5, *, epochs=10, batch_size=128, learning_rate=1e-3):
        self._keep_arguments(locals())
        self.x_dim = None if x_dim is None else check_positive_int(x_dim, "x_dim")
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
        self.objective, self.iwae_k = _check_objective(objective, iwae_k, prior, self.decoder_variance)
        self.likelihood, self.activation, self.seed, self.prior = likelihood, activation, int(seed), prior
        self.fast = bool(fast)
        self.epochs, self.batch_size, self.learning_rate = check_training_settings(epochs, batch_size, learning_rate)
        self.backend = B = get_backend()
        self.xp = B.xp
        self.dtype_name = B.dtype_name(dtype)
        self.dtype = B.dtype(dtype)
        self.rng = B.rng(self.seed)
        self.last_terms = {}
        self.encoder = None                             # no width yet: fit learns it, then builds the layers
        if self.x_dim is not None:
            self._build_layers(B.rng(self.seed, host=True), dtype)

    def _build_layers(self, init, dtype) -> None:
        """The encoder, its two heads, the decoder and its heads, drawn in this order from the host generator."""
        activation = self.activation
        h_enc = self.hidden[-1] if self.hidden else self.x_dim
        h_dec = self.decoder_hidden[-1] if self.decoder_hidden else self.z_dim
        self.encoder = MLP((self.x_dim, *self.hidden), activation, rng=init, dtype=dtype)
        self.enc_mu = Linear(h_enc, self.z_dim, init, dtype)
        self.enc_logvar = Linear(h_enc, self.z_dim, init, dtype)
        self.decoder = MLP((self.z_dim, *self.decoder_hidden), activation, rng=init, dtype=dtype)
        if self.likelihood == "bernoulli":
            self.dec_heads = {"logits": Linear(h_dec, self.x_dim, init, dtype)}
        elif self.decoder_variance == "amortised":
            self.dec_heads = {"mean": Linear(h_dec, self.x_dim, init, dtype),
                              "logvar": Linear(h_dec, self.x_dim, init, dtype)}
        else:
            self.dec_heads = {"mean": Linear(h_dec, self.x_dim, init, dtype)}
        self.decoder_noise = None                       # the log-variance when it does not depend on z
        if self.decoder_variance in ("per-dimension", "shared"):
            self.decoder_noise = DecoderNoise(self.x_dim if self.decoder_variance == "per-dimension" else 1, dtype)
        self.learned_prior = LearnedPrior(self.z_dim, dtype) if self.prior == "learned" else None

    # ----------------------------------------------------------------------------------------
    # Parameters
    # ----------------------------------------------------------------------------------------
    def _modules(self):
        if self.encoder is None:                        # not built: no parameters
            return
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

    @staticmethod
    def parameter_sizes(config: dict):
        """The number of values of each parameter array of a model of ``config`` (the constructor's keyword
        arguments), from its sizes alone, one array at a time (a checkpoint's config is checked against its arrays
        before the model is built)."""
        x, z = config["x_dim"], config["z_dim"]
        hidden = _widths(config.get("hidden", (400,)))
        decoder = hidden[::-1] if config.get("decoder_hidden") is None else _widths(config["decoder_hidden"])
        likelihood, variance = config.get("likelihood", "bernoulli"), config.get("decoder_variance", "amortised")
        for a, b in zip((x, *hidden), hidden):                        # encoder.<i>.W, .b
            yield from (a * b, b)
        yield from 2 * ((hidden[-1] if hidden else x) * z, z)         # encoder.mu, encoder.logvar
        for a, b in zip((z, *decoder), decoder):                      # decoder.<i>.W, .b
            yield from (a * b, b)
        heads = 2 if likelihood == "gaussian" and variance == "amortised" else 1
        yield from heads * ((decoder[-1] if decoder else z) * x, x)   # decoder.logits or .mean (and .logvar)
        if likelihood == "gaussian" and variance in ("per-dimension", "shared"):
            yield x if variance == "per-dimension" else 1             # decoder.noise.logvar
        if config.get("prior", "standard") == "learned":
            yield from (z, z)                                         # prior.mean, prior.logvar

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
        if not self.fast:
            config["fast"] = False
        if self.objective != "elbo":
            config.update(objective=self.objective, iwae_k=self.iwae_k)
        return config

    @property
    def elbo_config(self) -> dict:
        """The keywords of the functions of :mod:`refvae.vae.elbo` for this model."""
        return {"likelihood": self.likelihood, "activation": self.activation, "decoder_variance": self.decoder_variance,
                "prior": self.prior, "fast": self.fast}

    # ----------------------------------------------------------------------------------------
    # Inputs and random numbers
    # ----------------------------------------------------------------------------------------
    def validate_data(self, x, name="x"):
        """``x`` as a checked backend array (batch, x_dim) of the model's dtype; clear errors otherwise."""
        return as_data(x, self.x_dim, self.dtype_name, backend=self.backend,
                       unit_interval=self.likelihood == "bernoulli", name=name)

    _data = validate_data

    def _latent(self, z, name="z"):
        return as_data(z, self.z_dim, self.dtype_name, backend=self.backend, name=name)

    def _generator(self, rng=None, seed=None):
        """The generator a draw uses: ``rng`` if given, else a new one seeded with ``seed``, else ``self.rng``."""
        if rng is not None and seed is not None:
            raise ValueError("pass rng or seed, not both")
        if rng is not None:
            return rng
        return self.rng if seed is None else self.backend.rng(seed)

    def _noise(self, n, eps, rng=None):
        """The reparameterisation noise (n, z_dim): ``eps`` checked, or eps ~ N(0, I) from ``rng``."""
        if eps is None:
            return self._generator(rng).normal((n, self.z_dim), self.dtype_name)
        eps = as_data(eps, self.z_dim, self.dtype_name, backend=self.backend, name="eps")
        if eps.shape[0] != n:
            raise DataError(f"eps has {eps.shape[0]} rows but x has {n}: pass eps of shape ({n}, {self.z_dim})")
        return eps

    def _iw_noise(self, n, eps, rng=None):
        """The IWAE objective's noise (n, iwae_k, z_dim): ``eps`` checked, or eps ~ N(0, I) from ``rng``."""
        shape = (n, self.iwae_k, self.z_dim)
        if eps is None:
            return self._generator(rng).normal(shape, self.dtype_name)
        eps = self.xp.asarray(self.backend.asarray(eps, dtype=self.dtype_name))
        if tuple(eps.shape) != shape:
            raise DataError(f"eps has shape {tuple(eps.shape)}; the IWAE objective needs {shape} "
                            "(batch, iwae_k, z_dim)")
        return eps

    # ----------------------------------------------------------------------------------------
    # The objective (refvae.vae.elbo)
    # ----------------------------------------------------------------------------------------
    def loss_and_grads(self, x, eps=None, rng=None):
        """Batch mean of the negative ELBO and its gradient with respect to every parameter
        (:func:`refvae.vae.elbo.negative_elbo_and_grads`; ``objective="iwae"``: of -L_k,
        :func:`refvae.vae.elbo.negative_iw_bound_and_grads`); sets ``last_terms`` (empty for the IWAE).

        Parameters
        ----------
        x : array (batch, x_dim)
        eps : array (batch, z_dim), optional
            The reparameterisation noise; fixing it makes the loss a deterministic function of
            the parameters (for gradient checks). Drawn from ``rng`` (default ``self.rng``) when omitted.
            ``objective="iwae"``: (batch, iwae_k, z_dim), and the loss is -L_k.
        rng : refvae.backend.Generator, optional

        Returns
        -------
        loss : float
            mean over the batch of -ELBO, nats per example.
        grads : dict
            d loss / d param, with exactly the keys of ``params``.
        """
        x = self._data(x)                                               # (n, x_dim)
        if self.objective == "iwae":                                    # -L_k, eps (n, iwae_k, z_dim)
            loss, grads = elbo.negative_iw_bound_and_grads(self.params, x, self._iw_noise(x.shape[0], eps, rng),
                                                           **self.elbo_config)
            self.last_terms = {}
            return loss, grads
        eps = self._noise(x.shape[0], eps, rng)                         # (n, z_dim)
        loss, grads, self.last_terms = elbo.negative_elbo_and_grads(self.params, x, eps, with_terms=True,
                                                                    **self.elbo_config)
        return loss, grads

    def _negative_elbo(self, x, eps, rng):
        """(rec, kl) per example (:func:`refvae.vae.elbo.negative_elbo`): -ELBO = rec + kl."""
        x = self._data(x)
        return elbo.negative_elbo(self.params, x, self._noise(x.shape[0], eps, rng), **self.elbo_config)

    def loss(self, x, eps=None, rng=None) -> float:
        """Batch mean of the negative ELBO (no gradients), nats per example."""
        rec, kl = self._negative_elbo(x, eps, rng)
        return float(self.xp.mean(rec + kl))

    def elbo(self, x, eps=None, rng=None):
        """Per-example ELBO (one sample of eps), shape (batch,), nats."""
        rec, kl = self._negative_elbo(x, eps, rng)
        return -(rec + kl)

    def elbo_terms(self, x, eps=None, rng=None):
        """Per-example (reconstruction log-likelihood, KL), each (batch,): ELBO = rec - kl."""
        rec, kl = self._negative_elbo(x, eps, rng)
        return -rec, kl

    def log_likelihood(self, x, k=5000, seed=None, max_rows=8192, progress=False, rng=None):
        """Importance-weighted estimate of log p(x) with k samples from q(z|x), per example (batch,)
        (:func:`refvae.vae.elbo.iw_log_likelihood`: Burda et al. 2016, eq. 8). The noise comes from ``rng``, or a
        generator seeded with ``seed``, else ``self.rng``.

        Work is done in chunks of at most ``max_rows`` decoded rows, so memory stays near
        ``max_rows * x_dim * 4 bytes`` times a few temporaries (~200 MB at the default), whatever k.
        """
        k = check_positive_int(k, "k")
        max_rows = check_positive_int(max_rows, "max_rows")
        return elbo.iw_log_likelihood(self.params, self._data(x), k, self._generator(rng, seed), max_rows=max_rows,
                                      progress=progress, **self.elbo_config)

    # ----------------------------------------------------------------------------------------
    # Encoding, decoding, sampling
    # ----------------------------------------------------------------------------------------
    def encode(self, x):
        """(mu, logvar) of q(z | x), each (batch, z_dim); logvar is the log of the variance."""
        mu, logvar, _ = elbo.encode(self.params, self._data(x), **self.elbo_config)
        return mu, logvar

    def _decode(self, z):
        """The decoder's outputs at z (batch, z_dim), a dict ({"logits"} or {"mean", "logvar"})."""
        outs, _ = elbo.decode(self.params, z, **self.elbo_config)
        return outs

    def decode(self, z):
        """Decoder output for z (batch, z_dim): logits (batch, x_dim), or (mean, logvar) if Gaussian."""
        outs = self._decode(self._latent(z))
        return outs["logits"] if self.likelihood == "bernoulli" else (outs["mean"], outs["logvar"])

    def _decoder_mean(self, outs):
        return sigmoid(outs["logits"]) if self.likelihood == "bernoulli" else outs["mean"]

    def reconstruct(self, x):
        """The decoder's mean at z = mu(x), (batch, x_dim): Bernoulli probabilities or Gaussian means."""
        mu, _ = self.encode(x)
        return self._decoder_mean(self._decode(mu))

    def sample(self, n, mean=True, seed=None, source="prior", aggregate=None, rng=None):
        """n draws from the model, (n, x_dim): z from ``source`` (:meth:`sample_latent`), then the decoder's mean
        (default) or, with ``mean=False``, a sample of p(x|z). The noise comes from ``rng``, or a generator seeded
        with ``seed``, else ``self.rng``."""
        rng = self._generator(rng, seed)
        outs = self._decode(self.sample_latent(n, source=source, aggregate=aggregate, rng=rng))
        if mean:
            return self._decoder_mean(outs)
        if self.likelihood == "bernoulli":
            return rng.bernoulli(sigmoid(outs["logits"]))
        return outs["mean"] + self.xp.exp(0.5 * outs["logvar"]) * rng.normal(outs["mean"].shape, self.dtype_name)

    def sample_latent(self, n, seed=None, source="prior", aggregate=None, rng=None):
        """n latent draws z, (n, z_dim), from ``source``:

        - ``"prior"``: z ~ p(z), the model as trained;
        - ``"aggregate"``, ``"aggregate-full"``, ``"aggregate-mixture"``: from the aggregate posterior ``aggregate``
          (a :class:`refvae.vae.aggregate.AggregatePosterior`, from ``refvae.aggregate_posterior(model, X)`` on the
          training data): the moment-matched diagonal Gaussian, the full-covariance one, or the exact mixture
          (see :meth:`AggregatePosterior.draw <refvae.vae.aggregate.AggregatePosterior.draw>`).
        """
        n = check_positive_int(n, "n")
        if source not in SAMPLE_SOURCES:
            raise ValueError(f"source must be one of {', '.join(map(repr, SAMPLE_SOURCES))}, got {source!r}")
        rng = self._generator(rng, seed)
        if source != "prior":
            if aggregate is None:
                raise ValueError(f"sample(source={source!r}) needs the aggregate posterior: pass "
                                 "aggregate=refvae.aggregate_posterior(model, X), measured on the training data")
            if tuple(aggregate.mean.shape) != (self.z_dim,):
                raise ValueError(f"the aggregate posterior has {aggregate.mean.shape[0]} latent dimensions but the "
                                 f"model has {self.z_dim}: measure it on this model")
            return aggregate.draw(n, rng, source=source, dtype=self.dtype_name)
        eps = rng.normal((n, self.z_dim), self.dtype_name)
        if self.prior == "standard":
            return eps                                                  # z ~ N(0, I)
        p = self.learned_prior.params
        return p["mean"] + self.xp.exp(0.5 * p["logvar"]) * eps         # z ~ N(m, diag exp(v))

    # ----------------------------------------------------------------------------------------
    # What fit calls
    # ----------------------------------------------------------------------------------------
    def epoch_diagnostics(self, x) -> dict:
        """Numbers ``fit`` records after every epoch on a fixed subset of the training data:
        the aggregate posterior's mismatch with the prior (diagonal and full-covariance KL, nats) and
        the number of active units (see :func:`refvae.prior_mismatch`). The model is not changed."""
        model = self if self.prior == "standard" else aggregate.absorb_prior(self)
        r = aggregate.prior_mismatch(aggregate.aggregate_posterior(model, x))
        return {"mismatch_kl": r.kl_diag, "mismatch_kl_full": r.kl_full, "active_units": r.n_active}

    def align_to_prior(self, x) -> None:
        """Align the aggregate posterior over x (n, x_dim) to N(0, I) in place (:func:`refvae.align_to_prior`);
        ``fit(..., align="init" | "epoch")`` calls it."""
        aggregate.align_to_prior(self, aggregate.aggregate_posterior(self, x), inplace=True)

    # ----------------------------------------------------------------------------------------
    # The estimator interface (refvae.estimator): what it asks of the model
    # ----------------------------------------------------------------------------------------
    _min_fit_rows = 2            # fit's epoch diagnostics measure the spread of the posterior means

    def _data_width(self):
        return self.x_dim

    def _new_optimizer(self):
        return Adam(self.learning_rate)

    def _unit_interval_data(self) -> bool:
        return self.likelihood == "bernoulli"

    def _transform(self, X):
        """The posterior mean mu(x) of q(z | x), (n, z_dim)."""
        return self.encode(X)[0]

    def _score_samples(self, X):
        """The importance-weighted estimate of log p(x), (n,), k = SCORE_SAMPLES_K, a fresh seeded generator."""
        return self.log_likelihood(X, k=self.SCORE_SAMPLES_K, rng=self._query_rng())

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


def _widths(hidden) -> tuple:
    """Hidden widths as a tuple (an int is one layer)."""
    return (hidden,) if isinstance(hidden, int) else tuple(hidden)


OBJECTIVES = ("elbo", "iwae")


def _check_objective(objective, iwae_k, prior, decoder_variance):
    """(objective, iwae_k), checked: the IWAE objective needs the standard prior and a decoder variance that is a
    head of z (its function, elbo.negative_iw_bound_and_grads, is written for those)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    iwae_k = check_positive_int(iwae_k, "iwae_k")
    if objective == "iwae" and (prior != "standard" or decoder_variance in ("per-dimension", "shared")):
        raise ValueError("objective='iwae' needs prior='standard' and a Bernoulli decoder or decoder_variance="
                         "'amortised' or a fixed float")
    return objective, iwae_k


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
