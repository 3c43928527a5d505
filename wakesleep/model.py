"""The Helmholtz machine: a sigmoid belief network P and its recognition network Q, trained by wake-sleep,
reweighted wake-sleep or exact maximum likelihood.

The mathematics is in :mod:`wakesleep.rules` (read it first): the two networks' forward passes, log P(x, h) and
log Q(h | x), and the learning rules as short pure functions in the papers' order (Hinton, Dayan, Frey & Neal
1995; Bornschein & Bengio 2015). :class:`HelmholtzMachine` holds the configuration and its validation, the
parameters, sampling (``recognize``, ``dream``, ``sample``), the likelihoods (:mod:`wakesleep.likelihood`), the
training state and checkpoints, and calls the rules:

- ``loss_grads_and_targets(x, rng)``: the algorithm's step (``rules.wake_sleep_step``, ``rules.rws_step`` or
  ``rules.exact_step``), then the prior's (``rules.prior_step``); ``refvae.fit`` applies the returned targets
  (the moment-matching prior's new logits) after the optimiser's step. ``loss_and_grads(x, rng)``: the same
  without the targets. Neither writes onto the parameters.
- State: with ``prior="rbm"`` the sleep phase dreams from ``prior_chains``, persistent Gibbs chains of the RBM
  prior created by ``init_training_state(batch_size, rng)`` (``refvae.fit`` calls it at the start of a new run),
  advanced ``rbm_k`` sweeps by every training step and saved in checkpoints.
- Randomness: every method that draws takes ``rng``; without one it draws from ``self.rng``.

Parameters: ``prior.b`` (factorial prior) or ``prior.W``, ``prior.b``, ``prior.c`` (RBM prior), ``gen.l.W``
(n_l, n_{l-1}) and ``gen.l.b``, ``rec.l.W`` (n_{l-1}, n_l) and ``rec.l.b`` for l = 1..L.
"""

from __future__ import annotations

import functools

from refvae.backend import get_backend
from refvae.checkpoint import Checkpointable
from refvae.estimator import Estimator, check_training_settings
from refvae.layers import Linear, ParameterSlots
from refvae.numerics import clipped_logit, sigmoid
from refvae.optim import SGD
from refvae.validation import as_data, check_positive_int, check_state_array

from . import rules
from .likelihood import MAX_HIDDEN_ENUMERATION, exact_log_likelihood, importance_log_likelihood
from .rules import EXACT_ROWS

__all__ = ["ALGORITHMS", "EXACT_ROWS", "MAX_HIDDEN_ENUMERATION", "PRIORS", "PRIOR_UPDATES", "HelmholtzMachine"]

ALGORITHMS = ("wake-sleep", "rws", "exact")
PRIORS = ("factorial", "rbm")
PRIOR_UPDATES = ("gradient", "moment")


def _check_layer_sizes(layer_sizes):
    """The sizes as a tuple of positive ints; the first, the data width, may be None (learnt at fit)."""
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise ValueError(f"layer_sizes must be a sequence (n_visible, n_hidden_1, ..., n_top), got {layer_sizes!r}") \
            from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes must name the visible layer and at least one hidden layer, e.g. (784, 200); "
                         f"got {sizes!r}")
    return tuple(n if i == 0 and n is None else check_positive_int(n, f"layer_sizes[{i}]")
                 for i, n in enumerate(sizes))


def _check_algorithm(algorithm, k, prior, layer_sizes) -> int:
    """k, checked against the algorithm (and the exact algorithm against the model's size and prior)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    k = check_positive_int(k, "k")
    if algorithm != "rws" and k != 1:
        raise ValueError(f"k={k} samples per example is reweighted wake-sleep: use algorithm='rws' "
                         f"({algorithm} takes k=1)")
    if algorithm == "exact":
        n_hidden = sum(layer_sizes[1:])
        if n_hidden > MAX_HIDDEN_ENUMERATION:
            raise ValueError(f"algorithm='exact' enumerates all 2^{n_hidden} configurations of the {n_hidden} "
                             f"hidden units (layers {layer_sizes[1:]}): at most {MAX_HIDDEN_ENUMERATION}; "
                             "use algorithm='wake-sleep' or 'rws' for a model this large")
        if prior != "factorial":
            raise ValueError("algorithm='exact' needs prior='factorial' (the RBM prior's exact gradient would "
                             "need its own enumeration inside every hidden configuration)")
    return k


def _check_prior(prior, prior_update, prior_rate, rbm_hidden=None) -> float:
    """prior_rate as a float, with the prior, its update and the RBM prior's size checked."""
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    if rbm_hidden is not None and prior != "rbm":
        raise ValueError(f"rbm_hidden={rbm_hidden} sets the size of the RBM prior: it needs prior='rbm' (the "
                         f"{prior} prior has no hidden units of its own)")
    if prior_update not in PRIOR_UPDATES:
        raise ValueError(f"prior_update must be one of {PRIOR_UPDATES}, got {prior_update!r}")
    if prior == "rbm" and prior_update != "gradient":
        raise ValueError("prior_update='moment' applies to the factorial prior; the RBM prior is trained by "
                         "contrastive divergence on the wake samples (leave prior_update='gradient')")
    if not 0.0 < float(prior_rate) <= 1.0:
        raise ValueError(f"prior_rate must be in (0, 1], got {prior_rate}")
    return float(prior_rate)


def _check_init_std(init_std):
    if init_std is not None and not float(init_std) >= 0.0:
        raise ValueError(f"init_std must be >= 0 (or None for the default initialisation), got {init_std}")
    return None if init_std is None else float(init_std)


class HelmholtzMachine(Estimator, ParameterSlots, Checkpointable):
    """A Helmholtz machine with binary stochastic layers, trained by wake-sleep or reweighted wake-sleep.

    Also a scikit-learn estimator (:mod:`refvae.estimator`): ``fit(X)`` trains a fresh model with ``refvae.fit``
    (SGD at ``learning_rate`` with momentum 0.9, ``epochs`` epochs of ``batch_size``, the data as given),
    ``partial_fit(X)`` one more pass over X, ``transform(X)`` = Q(h_1 = 1 | x), the recognition network's mean of
    the first hidden layer, (n, n_1) (exact and deterministic; the upper layers' means under Q would need samples),
    and ``score_samples(X)`` = log P(x) per row: exact when the hidden layers have at most MAX_HIDDEN_ENUMERATION
    units in all, else the importance-weighted estimate with k = SCORE_SAMPLES_K samples from Q (a fresh generator
    seeded by ``seed``).

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_visible, n_hidden_1, ..., n_top)``, bottom to top; n_visible may be None: learnt from the data at the
        first ``fit`` (``n_features_in_``).
    seed : int
        Seeds the initial weights (drawn on the host: the same on every backend) and the default generator
        ``self.rng``.
    dtype : {"float32", "float64"}
    algorithm : {"wake-sleep", "rws", "exact"}
        ``"exact"``: the exact likelihood gradient by enumerating the hidden configurations (factorial prior, at
        most MAX_HIDDEN_ENUMERATION hidden units in all), Q trained towards the exact posterior.
    k : int
        Samples from Q per example for RWS (must be 1 for wake-sleep and exact).
    prior : {"factorial", "rbm"}
        The top layer's prior: independent Bernoullis with logits ``prior.b``, or an RBM over h_L with
        ``rbm_hidden`` hidden units (parameters ``prior.W``, ``prior.b``, ``prior.c``).
    prior_update : {"gradient", "moment"}
        Factorial prior only: the wake-phase gradient (through the optimiser) or the moment-matching step
        p <- (1 - rho) p + rho <Q(h_L = 1 | h_{L-1})>_batch, returned as a target by ``loss_grads_and_targets``.
    prior_rate : float
        rho of the moment-matching step.
    rbm_hidden : int, optional
        Hidden units of the RBM prior (default: as many as the top layer, at most 16, so that its log Z,
        needed by every likelihood, is exact and cheap). ``rbm_k``: its CD steps (and the sleep chains' sweeps
        per update).
    init_std : float, optional
        None: the layers' default initialisation (weights and biases uniform in ±1/sqrt(fan-in), as PyTorch's
        ``nn.Linear``). A number: weights N(0, init_std²) and biases 0 (0.0 starts from all-zero weights; the
        sampling breaks the symmetry).
    epochs, batch_size, learning_rate
        How the estimator's ``fit`` and ``partial_fit`` train (``refvae.fit`` takes them as its arguments).

    Attributes
    ----------
    generative, recognition : list of refvae.layers.Linear
        ``generative[l-1]`` maps h_l to the logits of h_{l-1}; ``recognition[l-1]`` maps h_{l-1} to those of h_l.
    prior_chains : array (n_chains, n_top) or None
        The RBM prior's persistent sleep-phase chains (``init_training_state``); None for the factorial prior.
    rng : Generator
        The default generator of every draw made without an ``rng`` argument.
    fast_exact : bool
        ``algorithm="exact"``: take ``rules.exact_step``'s cheaper-order twin (True) or its textbook form.
    """

    SCORE_SAMPLES_K = 1000      # importance samples per example of score_samples, when it cannot enumerate

    def __init__(self, layer_sizes, seed=0, dtype="float32", algorithm="wake-sleep", k=1, prior="factorial",
                 prior_update="gradient", prior_rate=0.05, rbm_hidden=None, rbm_k=1, init_std=None, *, epochs=10,
                 batch_size=10, learning_rate=0.1):
        self._keep_arguments(locals())
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        self.k = _check_algorithm(algorithm, k, prior, self.layer_sizes)
        self.prior_rate = _check_prior(prior, prior_update, prior_rate, rbm_hidden)
        self.algorithm, self.prior, self.prior_update = algorithm, prior, prior_update
        self.init_std = _check_init_std(init_std)
        self.rbm_k = check_positive_int(rbm_k, "rbm_k")
        self.seed = int(seed)
        self.epochs, self.batch_size, self.learning_rate = check_training_settings(epochs, batch_size, learning_rate)
        self.backend = B = get_backend()
        self.xp = B.xp
        self.dtype_name = B.dtype_name(dtype)
        self.generative, self.recognition = self._make_layers(B.rng(self.seed, host=True))
        self._check_layers()
        self.rbm_hidden, self.prior_rbm, self.prior_params = self._make_prior(rbm_hidden)
        self.rng = B.rng((self.seed, 1))        # the default generator, for calls made without an rng
        self.fast_exact = True                  # algorithm="exact": rules.exact_step's cheaper-order twin
        self.prior_chains = None                # the RBM prior's sleep chains: init_training_state creates them

    def _make_layers(self, init):
        """The generative and recognition lists of Linear layers, drawn from the host generator ``init`` (none while
        the data width is unknown)."""
        sizes, dt = self.layer_sizes, self.dtype_name
        if sizes[0] is None:
            return [], []
        generative = [Linear(sizes[l], sizes[l - 1], init, dt) for l in range(1, len(sizes))]
        recognition = [Linear(sizes[l - 1], sizes[l], init, dt) for l in range(1, len(sizes))]
        if self.init_std is not None:                                     # weights N(0, init_std²), biases 0
            for layer in generative + recognition:
                layer.params["W"] = self.init_std * init.normal(tuple(layer.params["W"].shape), dt)
                layer.params["b"] = self.backend.zeros(tuple(layer.params["b"].shape), dt)
        return generative, recognition

    def _make_prior(self, rbm_hidden):
        """(rbm_hidden, prior_rbm, prior_params): the factorial prior's logits b = 0 (P(h_L = 1) = 1/2), or an RBM
        over h_L whose parameter dict is the prior's (one set of arrays)."""
        n_top = self.layer_sizes[-1]
        if self.prior == "factorial":
            return None, None, {"b": self.backend.zeros((n_top,), self.dtype_name)}
        from rbm import BernoulliRBM

        rbm_hidden = check_positive_int(rbm_hidden if rbm_hidden is not None else min(n_top, 16), "rbm_hidden")
        prior_rbm = BernoulliRBM(n_top, rbm_hidden, seed=self.seed, dtype=self.dtype_name, k=self.rbm_k,
                                 persistent=False)
        return rbm_hidden, prior_rbm, prior_rbm.params

    # ----------------------------------------------------------------------------------------------
    # Parameters and configuration
    # ----------------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """L, the number of hidden layers."""
        return len(self.layer_sizes) - 1

    def _check_layers(self):
        """The two parallel lists: generative[l-1] is (n_l -> n_{l-1}), recognition[l-1] is (n_{l-1} -> n_l)."""
        sizes = self.layer_sizes
        if sizes[0] is None:                        # not built yet: fit learns the data width
            return
        if len(self.generative) != self.n_layers or len(self.recognition) != self.n_layers:
            raise ValueError(f"{self.n_layers} hidden layers need {self.n_layers} generative and recognition layers, "
                             f"got {len(self.generative)} and {len(self.recognition)}")
        for l in range(1, len(sizes)):
            for name, layer, shape in (("generative", self.generative[l - 1], (sizes[l], sizes[l - 1])),
                                       ("recognition", self.recognition[l - 1], (sizes[l - 1], sizes[l]))):
                if tuple(layer.params["W"].shape) != shape or tuple(layer.params["b"].shape) != shape[1:]:
                    raise ValueError(f"{name} layer {l} has W {tuple(layer.params['W'].shape)} and b "
                                     f"{tuple(layer.params['b'].shape)}; layer sizes {sizes} need W {shape}, b {shape[1:]}")

    def _slots(self):
        """(flat name, owning dict, key) for every parameter array."""
        for key in self.prior_params:
            yield f"prior.{key}", self.prior_params, key
        for l, layer in enumerate(self.generative, 1):
            for key in ("W", "b"):
                yield f"gen.{l}.{key}", layer.params, key
        for l, layer in enumerate(self.recognition, 1):
            for key in ("W", "b"):
                yield f"rec.{l}.{key}", layer.params, key

    @staticmethod
    def parameter_sizes(config: dict):
        """The number of values of each parameter array of a model of ``config``, from its sizes alone, one array
        at a time (a checkpoint's config is checked against its arrays before the model is built)."""
        sizes = config["layer_sizes"]
        n_top = sizes[-1]
        if config.get("prior", "factorial") == "rbm":
            rbm_hidden = config.get("rbm_hidden") or min(n_top, 16)
            yield from (n_top * rbm_hidden, n_top, rbm_hidden)               # prior.W, prior.b, prior.c
        else:
            yield n_top                                                       # prior.b
        for below, above in zip(sizes[:-1], sizes[1:]):
            yield from (above * below, below)                                 # generative: W, b
        for below, above in zip(sizes[:-1], sizes[1:]):
            yield from (below * above, above)                                 # recognition: W, b

    @property
    def config(self) -> dict:
        return {"layer_sizes": list(self.layer_sizes), "seed": self.seed, "dtype": self.dtype_name,
                "algorithm": self.algorithm, "k": self.k, "prior": self.prior, "prior_update": self.prior_update,
                "prior_rate": self.prior_rate, "rbm_hidden": self.rbm_hidden, "rbm_k": self.rbm_k,
                "init_std": self.init_std}

    def validate_data(self, x, name="x"):
        """``x`` as a checked backend array (batch, n_visible) in [0, 1] of the model's dtype."""
        return as_data(x, self.layer_sizes[0], self.dtype_name, backend=self.backend, unit_interval=True,
                       name=name,
                       range_fix="rescale it (e.g. pixels / 255): binary units model values in [0, 1]")

    def _states(self, hs, batch, name="hs"):
        """Check a list of hidden states: one (batch, n_l) array per hidden layer."""
        if not isinstance(hs, (list, tuple)) or len(hs) != self.n_layers:
            raise ValueError(f"{name} must be a list of {self.n_layers} arrays, one per hidden layer "
                             f"(sizes {self.layer_sizes[1:]}); got {type(hs).__name__} of length "
                             f"{len(hs) if isinstance(hs, (list, tuple)) else '?'}")
        out = []
        for l, h in enumerate(hs, start=1):
            shape = (batch, self.layer_sizes[l])
            if tuple(h.shape) != shape:
                raise ValueError(f"{name}[{l - 1}] (layer {l}) has shape {tuple(h.shape)}, expected {shape}")
            out.append(self.backend.asarray(h, dtype=self.dtype_name))
        return out

    def _row_weights(self, weights, n):
        """Per-row weights (n,) as given (None: 1/n each, the mean)."""
        if weights is not None and tuple(weights.shape) != (n,):
            raise ValueError(f"weights must have shape ({n},), one per row; got {tuple(weights.shape)}")
        return weights

    def init_visible_bias(self, X, eps=1e-3) -> None:
        """The generative visible biases at the data's log-odds, ``gen.1.b`` = log(p_i / (1 - p_i)) from the pixel
        means p_i of X (batch, n_visible), clipped to [eps, 1 - eps] (the initialisation of Hinton, Dayan, Frey &
        Neal 1995: with all hidden units off the model already reproduces each pixel's rate)."""
        if not self.generative:
            raise ValueError("the machine has no layers yet (layer_sizes[0] is None): give n_visible, or fit first")
        self.generative[0].params["b"] = clipped_logit(self.xp.mean(self.validate_data(X, "X"), axis=0), eps)

    # ----------------------------------------------------------------------------------------------
    # Sampling
    # ----------------------------------------------------------------------------------------------
    def recognize(self, x, rng=None):
        """A sample h ~ Q(h | x), bottom-up: (hs, top_probs) with hs = [h_1, ..., h_L], (batch, n_l) each, and
        top_probs = Q(h_L = 1 | h_{L-1}), (batch, n_L)."""
        hs, rec_logits = rules.recognize(self.recognition, x, self.rng if rng is None else rng)
        return hs, sigmoid(rec_logits[-1])

    def sample_prior(self, n, rng=None, gibbs_steps=200):
        """h_L ~ P(h_L), (n, n_L): independent Bernoullis, or ``gibbs_steps`` sweeps of fresh random Gibbs chains of
        the RBM prior (the persistent sleep chains are ``prior_chains``, left as they are)."""
        rng = self.rng if rng is None else rng
        n_top = self.layer_sizes[-1]
        if self.prior == "factorial":
            return rng.bernoulli(self.xp.broadcast_to(sigmoid(self.prior_params["b"]), (n, n_top)))
        v = rng.bernoulli(self.backend.zeros((n, n_top), self.dtype_name) + 0.5)
        return self.prior_rbm.gibbs(v, gibbs_steps, rng)[0]

    def dream(self, n, rng=None):
        """Ancestral samples (x, hs) ~ P: h_L from the prior, then each layer from the one above, (n, n_l) each."""
        rng = self.rng if rng is None else rng
        return rules.dream(self.generative, self.sample_prior(n, rng), rng)

    def sample(self, n, seed=None, mean=True, rng=None):
        """n dreams from the generative model: P(x = 1 | h_1) (``mean=True``) or binary x, (n, n_visible); drawn
        from ``rng``, else from a generator seeded by ``seed``, else from ``self.rng``."""
        n = check_positive_int(n, "n")
        rng = rng if rng is not None else self.rng if seed is None else self.backend.rng(seed)
        _, hs = self.dream(n, rng)
        probs = sigmoid(rules.generative_logits(self.generative[:1], hs[:1])[0])   # P(x = 1 | h_1)
        return probs if mean else rng.bernoulli(probs)

    # ----------------------------------------------------------------------------------------------
    # Training state: the RBM prior's persistent sleep chains
    # ----------------------------------------------------------------------------------------------
    def init_training_state(self, batch_size, rng=None) -> None:
        """Create the state a new training run starts from. With the RBM prior: ``prior_chains``, ``batch_size``
        persistent Gibbs chains for the sleep phase's dreams, started uniformly at random and run 200 sweeps
        (``sample_prior``), unless the model has at least that many already (from an earlier ``fit`` or a
        checkpoint: kept, as the parameters are, and as an RBM's PCD chains are); the factorial prior has no state.
        ``refvae.fit`` calls it before the first epoch of a new run (on resume, ``set_state`` restores the chains)."""
        batch_size = check_positive_int(batch_size, "batch_size")
        if self.prior == "rbm" and (self.prior_chains is None or self.prior_chains.shape[0] < batch_size):
            self.prior_chains = self.sample_prior(batch_size, rng)

    def _sleep_top(self, n, rng):
        """h_L for the sleep phase's n dreams, (n, n_L): independent Bernoullis (factorial prior), or the RBM
        prior's persistent chains advanced ``rbm_k`` sweeps, of which the first n are used (writes
        ``prior_chains``)."""
        if self.prior == "factorial":
            return self.sample_prior(n, rng)
        if self.prior_chains is None:
            raise RuntimeError("the RBM prior's persistent sleep chains (prior_chains) do not exist yet: call "
                               "model.init_training_state(batch_size, rng) before training (refvae.fit does, at "
                               "the start of a new run; a checkpoint restores them)")
        if self.prior_chains.shape[0] < n:
            raise ValueError(f"a batch of {n} examples needs {n} sleep chains, and prior_chains holds "
                             f"{self.prior_chains.shape[0]}: call model.init_training_state({n}, rng) for batches "
                             f"of up to {n}")
        self.prior_chains, _ = self.prior_rbm.gibbs(self.prior_chains, self.rbm_k, rng)
        return self.prior_chains[:n, :]

    # ----------------------------------------------------------------------------------------------
    # Log-probabilities of given states
    # ----------------------------------------------------------------------------------------------
    def log_prior(self, h_top, log_z=None):
        """log P(h_L) per example (batch,): sum_j [h_j b_j - softplus(b_j)], or -F(h_L) - log Z for the RBM prior
        (log Z exact unless given)."""
        if self.prior == "factorial":
            return rules.log_factorial_prior(self.prior_params["b"], h_top)
        if log_z is None:
            log_z = self.prior_rbm.log_partition("exact")
        return -self.prior_rbm.free_energy(h_top) - log_z

    def log_prior_function(self):
        """h_L -> log P(h_L) (rows,), the prior as the rules take it; with the RBM prior, log Z is computed once,
        now (valid until the parameters change)."""
        if self.prior == "rbm":
            return functools.partial(self.log_prior, log_z=self.prior_rbm.log_partition("exact"))
        return self.log_prior

    def log_joint(self, x, hs, log_z=None):
        """log P(x, h_1, ..., h_L) = log P(h_L) + sum_l log P(h_{l-1} | h_l), per example (batch,)."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        return rules.log_joint(self.log_prior(hs[-1], log_z), x, hs, rules.generative_logits(self.generative, hs))

    def log_q(self, hs, x):
        """log Q(h_1, ..., h_L | x) = sum_l log Q(h_l | h_{l-1}), per example (batch,)."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        return rules.log_q(hs, rules.recognition_logits(self.recognition, x, hs))

    # ----------------------------------------------------------------------------------------------
    # The updates (wakesleep.rules) and the training step
    # ----------------------------------------------------------------------------------------------
    def wake_grads(self, x, hs, weights=None) -> dict:
        """The wake update of P at given states: gradients of -sum_rows weight_row * log P(x_row, h_row).

        ``weights`` (batch,) default to 1/batch (the mean); RWS passes omega_i / n_examples. Returns the ``gen.*``
        gradients (``rules.wake_step``) and, for the factorial prior, its wake gradient ``prior.b`` =
        sum_rows weight (sigmoid(b) - h_L) (``rules.prior_step``). The RBM prior learns by CD instead."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        w = self._row_weights(weights, x.shape[0])
        grads = rules.wake_step(x, hs, rules.generative_logits(self.generative, hs), w)
        if self.prior == "factorial":
            total = 1.0 if w is None else self.xp.sum(w)
            top = rules.TopLayer(hs[-1], rules.weighted_mean(hs[-1], w), total, None)
            grads.update(rules.prior_step(self.prior_params, top, "gradient")[0])
        return grads

    def sleep_grads(self, x, hs, weights=None) -> dict:
        """The sleep update of Q at given states (or RWS's weighted wake update of Q): gradients of
        -sum_rows weight * log Q(h | x), ``rec.*`` only (``rules.sleep_step``); ``weights`` default to 1/batch."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        w = self._row_weights(weights, x.shape[0])
        return rules.sleep_step(x, hs, rules.recognition_logits(self.recognition, x, hs), w)

    def loss_grads_and_targets(self, x, rng=None):
        """One training step on the batch x (batch, n_visible): (loss, grads, targets).

        The algorithm's step (``rules.wake_sleep_step``, ``rules.rws_step`` or ``rules.exact_step``) gives the loss
        and the ``gen.*`` and ``rec.*`` gradients; the prior's (``rules.prior_step``) the ``prior.*`` gradients and
        the targets. Draws come from ``rng`` (default ``self.rng``). The parameters are not written; with the RBM
        prior the persistent sleep chains (``prior_chains``) advance ``rbm_k`` sweeps.

        Returns
        -------
        loss : float
            Wake-sleep: the one-sample negative ELBO, mean over the batch of -(log P(x, h) - log Q(h | x)),
            h ~ Q. RWS: the negative k-sample importance-weighted bound -log (1/k sum_i w_i), mean over the batch
            (nats per example; a stochastic upper bound on -log P(x)). Exact: -mean log P(x).
        grads : dict
            Every parameter's descent direction (``prior.b`` zero with ``prior_update="moment"``).
        targets : dict
            ``{"prior.b": logits}`` after the moment-matching step (``prior_update="moment"``), else empty: the
            values the parameters take after the optimiser's step (``refvae.fit`` writes them).
        """
        rng = self.rng if rng is None else rng
        x = self.validate_data(x)
        gen, rec, log_prior = self.generative, self.recognition, self.log_prior_function()
        if self.algorithm == "exact":
            loss, grads, top = rules.exact_step(gen, rec, log_prior, x, fast=self.fast_exact)
        elif self.algorithm == "rws":
            loss, grads, top = rules.rws_step(gen, rec, log_prior, x, self._sleep_top(x.shape[0], rng), self.k, rng)
        else:
            loss, grads, top = rules.wake_sleep_step(gen, rec, log_prior, x, self._sleep_top(x.shape[0], rng), rng)
        prior_grads, targets = rules.prior_step(self.prior_params, top, self.prior_update, self.prior_rate,
                                                self.prior_rbm, rng)
        return float(self.backend.to_numpy(loss)), {**prior_grads, **grads}, targets

    def loss_and_grads(self, x, rng=None):
        """(loss, grads) of :meth:`loss_grads_and_targets`, without its targets: nothing is written onto the
        parameters, so with ``prior_update="moment"`` the prior does not move (``refvae.fit`` calls
        ``loss_grads_and_targets`` and applies them)."""
        loss, grads, _ = self.loss_grads_and_targets(x, rng)
        return loss, grads

    def loss(self, x, rng=None) -> float:
        """The monitored loss of ``loss_grads_and_targets`` without an update, on fresh samples from Q drawn from
        ``rng`` (nats per example): -mean log (1/k sum_i w_i) (``rules.iw_bound``; k = 1: the negative ELBO);
        ``algorithm="exact"``: the exact -mean log P(x)."""
        xp = self.xp
        x = self.validate_data(x)
        if self.algorithm == "exact":
            return float(-xp.mean(self.log_likelihood(x)))
        n, k = x.shape[0], self.k
        xs = rules.repeat_rows(x, k) if k > 1 else x
        hs, rec_logits = rules.recognize(self.recognition, xs, self.rng if rng is None else rng)
        log_p = rules.log_joint(self.log_prior(hs[-1]), xs, hs, rules.generative_logits(self.generative, hs))
        log_w = xp.reshape(log_p - rules.log_q(hs, rec_logits), (n, k))        # log w_i, (n, k)
        return float(-xp.mean(rules.iw_bound(log_w)))

    # ----------------------------------------------------------------------------------------------
    # Likelihoods, diagnostics
    # ----------------------------------------------------------------------------------------------
    def log_likelihood(self, X, method="exact", k=1000, seed=None, max_rows=8192, chunk=2**14, progress=False,
                       rng=None):
        """log P(x) per example (batch,).

        ``method="exact"``: log sum_h P(x, h) over all 2^H configurations of the H hidden units, enumerated in
        chunks of ``chunk`` with a running log-sum-exp (H <= MAX_HIDDEN_ENUMERATION).
        ``method="importance"``: logsumexp_i (log P(x, h_i) - log Q(h_i | x)) - log k with h_i ~ Q(.|x), a
        stochastic lower bound that converges to log P(x) as k grows (Burda et al. 2016; Bornschein & Bengio 2015),
        computed in chunks of at most ``max_rows`` sampled rows, drawn from ``rng``, else from a generator seeded by
        ``seed``, else from ``self.rng``. ``progress``: a bar over the exact enumeration.
        """
        X = self.validate_data(X, "X")
        if method == "exact":
            return exact_log_likelihood(self.generative, self.log_prior_function(), X,
                                        check_positive_int(chunk, "chunk"), progress=progress)
        if method == "importance":
            rng = rng if rng is not None else self.rng if seed is None else self.backend.rng(seed)
            return importance_log_likelihood(self.generative, self.recognition, self.log_prior_function(), X,
                                             check_positive_int(k, "k"), rng, check_positive_int(max_rows, "max_rows"))
        raise ValueError(f"method must be 'exact' or 'importance', got {method!r}")

    def firing_rates(self, X, n_dreams=2000, seed=0, rng=None) -> list:
        """Per hidden layer, (aggregate recognition rate <Q(h_l = 1 | .)>_data, generative rate from dreams),
        each (n_l,) on the device, drawn from ``rng`` (default: a generator seeded by ``seed``, so that the same
        call gives the same numbers). For the factorial prior the top layer's generative rate is exact: sigmoid(b)."""
        xp = self.xp
        X = self.validate_data(X, "X")
        rng = self.backend.rng(seed) if rng is None else rng
        _, rec_logits = rules.recognize(self.recognition, X, rng)
        _, dreams = self.dream(check_positive_int(n_dreams, "n_dreams"), rng)
        out = [(xp.mean(sigmoid(a), axis=0), xp.mean(h, axis=0)) for a, h in zip(rec_logits, dreams)]
        if self.prior == "factorial":
            out[-1] = (out[-1][0], sigmoid(self.prior_params["b"]))
        return out

    def epoch_diagnostics(self, X) -> dict:
        """Recorded by ``fit`` after every epoch: the top layer's prior against the aggregate recognition rate."""
        xp = self.xp
        agg, prior = self.firing_rates(X, n_dreams=1000)[-1]
        both = self.backend.to_numpy(xp.stack([xp.mean(agg), xp.mean(prior), xp.max(xp.abs(agg - prior))]))
        return {"aggregate_posterior_mean": float(both[0]), "model_marginal_mean": float(both[1]),
                "prior_gap_max": float(both[2])}

    # ----------------------------------------------------------------------------------------------
    # The estimator interface (refvae.estimator): what it asks of the model
    # ----------------------------------------------------------------------------------------------
    _width_argument = "layer_sizes"

    def _data_width(self):
        return self.layer_sizes[0]

    def _given_width(self):
        return tuple(self._arguments["layer_sizes"])[0]        # as given (validated by the constructor)

    def _arguments_with_width(self, width: int) -> dict:
        if self._given_width() is not None:
            return dict(self._arguments)
        return {**self._arguments, "layer_sizes": (width, *self.layer_sizes[1:])}

    def _new_optimizer(self):
        return SGD(self.learning_rate, momentum=0.9)

    def _transform(self, X):
        """Q(h_1 = 1 | x), (n, n_1)."""
        return sigmoid(rules.recognition_logits(self.recognition[:1], X, [])[0])

    def _score_samples(self, X):
        """log P(x), (n,): exact for few hidden units, else importance-weighted (a fresh seeded generator)."""
        if sum(self.layer_sizes[1:]) <= MAX_HIDDEN_ENUMERATION:
            return self.log_likelihood(X)
        return self.log_likelihood(X, "importance", k=self.SCORE_SAMPLES_K, rng=self._query_rng())

    # ----------------------------------------------------------------------------------------------
    # Checkpoints
    # ----------------------------------------------------------------------------------------------
    def checkpoint_arrays(self) -> dict:
        B = self.backend
        arrays = {f"model/{k}": B.to_numpy(v, copy=True) for k, v in self.params.items()}
        if self.prior_chains is not None:
            arrays["state/prior_chains"] = B.to_numpy(self.prior_chains, copy=True)
        return arrays

    def set_state(self, state: dict) -> None:
        """Restore the RBM prior's persistent sleep-phase chains (from a checkpoint's ``state/`` arrays), checked first:
        binary states of the top layer, (n_chains, n_top), and only for the RBM prior (a ValueError says what is
        wrong)."""
        unknown = sorted(set(state) - ({"prior_chains"} if self.prior == "rbm" else set()))
        if unknown:
            raise ValueError(f"unknown state {unknown}: a HelmholtzMachine with the {self.prior} prior keeps "
                             + ("prior_chains" if self.prior == "rbm" else "none"))
        chains = state.get("prior_chains")
        if chains is not None:
            chains = check_state_array(chains, "prior_chains", (None, self.layer_sizes[-1]), binary=True)
        self.prior_chains = None if chains is None else self.backend.asarray(chains, dtype=self.dtype_name)

    def __repr__(self):
        algo = f"RWS k={self.k}" if self.algorithm == "rws" else self.algorithm
        prior = self.prior if self.prior == "rbm" else f"factorial, {self.prior_update} update"
        return f"HelmholtzMachine({'-'.join(map(str, self.layer_sizes))}, {algo}, prior {prior})"
