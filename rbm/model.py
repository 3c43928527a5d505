"""The Bernoulli restricted Boltzmann machine, trained by contrastive divergence (CD-k), persistent CD or the
exact gradient.

Model, for binary v (n_visible,) and h (n_hidden,)::

    E(v, h) = -b.v - c.h - v^T W h                     W: (n_visible, n_hidden), b: (n_visible,), c: (n_hidden,)
    P(v, h) = exp(-E(v, h)) / Z
    P(h_j = 1 | v) = sigmoid(c_j + (v W)_j)          P(v_i = 1 | h) = sigmoid(b_i + (W h)_i)
    F(v) = -b.v - sum_j softplus(c_j + (v W)_j)      (free energy: P(v) = exp(-F(v)) / Z)

The gradient of the negative log-likelihood of one example is

    d(-log P(v))/d theta = dF(v)/d theta - E_model[dF/d theta]
    dF/dW = -v^T sigmoid(c + vW),   dF/db = -v,   dF/dc = -sigmoid(c + vW)

``rbm/gradients.py`` writes the update out in the order of Hinton's guide (2010): the positive phase, the
negative phase (CD-k: k Gibbs sweeps from the data; PCD: k sweeps of persistent chains, Tieleman 2008;
``negative_phase="exact"``: E_model by enumerating the smaller layer, at most MAX_EXACT_TRAINING = 20 units),
the gradient and the penalties. This class holds the configuration, validation, the persistent chains,
sampling, likelihoods and checkpoints, and calls those functions.

The hidden biases c are the log-odds of the hidden units' "prior": they adapt during training
(``adaptive_prior=True``); at a maximum of the likelihood their gradient vanishes, that is, the aggregate
posterior <P(h|v)>_data equals the model's marginal E_model[h]. ``adaptive_prior=False`` keeps them fixed.

Sign convention: ``grads`` are d(loss)/d(param) of the negative log-likelihood (estimated); optimisers subtract.

References
----------
G. E. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", UTML TR 2010-003.
T. Tieleman, "Training Restricted Boltzmann Machines using Approximations to the Likelihood Gradient", ICML 2008.
R. Salakhutdinov, I. Murray, "On the Quantitative Analysis of Deep Belief Networks", ICML 2008.
"""

from __future__ import annotations

from refvae.backend import get_backend
from refvae.numerics import clipped_logit
from refvae.checkpoint import Checkpointable
from refvae.estimator import Estimator, NotFittedError, check_training_settings
from refvae.optim import SGD
from refvae.validation import as_data, check_positive_int, check_state_array

from . import gradients as G
from .partition import model_expectations

__all__ = ["BernoulliRBM", "MAX_EXACT_TRAINING", "NEGATIVE_PHASES"]

NEGATIVE_PHASES = ("gibbs", "exact")
MAX_EXACT_TRAINING = 20   # units in the smaller layer for negative_phase="exact" (2^20 states per update)


class BernoulliRBM(Estimator, Checkpointable):
    """A Bernoulli-Bernoulli RBM with hand-written CD-k / PCD updates (the functions of ``rbm.gradients``).

    Also a scikit-learn estimator (:mod:`refvae.estimator`): ``fit(X)`` trains a fresh model with ``refvae.fit``
    (visible biases from the data's means, SGD at ``learning_rate`` with momentum 0.9, ``epochs`` epochs of
    ``batch_size``), ``partial_fit(X)`` one more pass over X, ``transform(X)`` = P(h = 1 | x) (n, n_hidden),
    ``score_samples(X)`` = log P(x) per row: exact (log Z by enumeration) when the smaller layer has at most
    MAX_EXACT_TRAINING units, else with log Z from AIS (``log_partition("ais")``'s defaults, seeded by ``seed``,
    base rates uniform; it costs minutes for a large model: for several scores call ``log_partition`` once and
    ``log_likelihood(V, log_z=...)``). scikit-learn's own BernoulliRBM scores the pseudo-likelihood instead.

    Parameters
    ----------
    n_visible : int, optional
        Visible units, the data width; None: learnt from the data at the first ``fit`` (``n_features_in_``).
    n_hidden : int
    seed : int
        Seeds the initial weights (drawn on the host: the same on every backend) and the default generator
        ``rng`` (used by the methods that draw when they are given no ``rng``).
    dtype : {"float32", "float64"}
    k : int
        Gibbs steps per update.
    persistent : bool
        PCD (chains kept on the device across updates) or CD-k (chains start at the data).
    n_chains : int, optional
        PCD's number of persistent chains when ``refvae.fit`` creates them (``init_training_state``); default: the
        batch size.
    negative_phase : {"gibbs", "exact"}
        ``"gibbs"``: CD-k or PCD as above. ``"exact"``: E_model by enumerating the smaller layer (at most
        MAX_EXACT_TRAINING units), so ``loss_and_grads`` gives the exact negative log-likelihood and its exact
        gradient (``k``, ``persistent`` and ``n_chains`` are then unused).
    adaptive_prior : bool
        Train the hidden biases c (the hidden "prior"); False keeps them at their initial value 0.
    sparsity_target : float, optional
        Pull each hidden unit's mean activation q_j (an exponential average over batches, decay 0.95)
        towards this target: the hidden biases (and weights) get the extra gradient
        ``sparsity_cost * (q_j - target)`` (Hinton 2010, section 11).
    sparsity_cost : float
    weight_decay : float
        L2 penalty ``weight_decay/2 * |W|^2`` added to the loss (its gradient to ``grads["W"]``).
    epochs, batch_size, learning_rate
        How the estimator's ``fit`` and ``partial_fit`` train (``refvae.fit`` takes them as its arguments).

    Attributes
    ----------
    params : dict
        ``W`` (n_visible, n_hidden), ``b`` (n_visible,), ``c`` (n_hidden,).
    chains : array (n_chains, n_visible) or None
        PCD's persistent chains ("fantasy particles"): their visible states after the last update. Fitted state,
        created by ``init_chains`` (or ``init_training_state``, which ``refvae.fit`` calls), advanced by every
        ``loss_and_grads`` and kept in checkpoints. None for CD-k and the exact negative phase.
    chain_hidden : array (n_chains, n_hidden) or None
        The chains' hidden states, h ~ P(h | chains) drawn at the last update: where the next update's Gibbs
        sweeps start (scikit-learn's ``h_samples_``).
    sparsity_q : array (n_hidden,) or None
        The running average of the hidden units' activations (with ``sparsity_target``; None before the first
        batch), kept in checkpoints.
    rng : refvae.backend.Generator
        The default generator of the methods that draw, when they are not given one.
    """

    def __init__(self, n_visible=None, n_hidden=256, seed=0, dtype="float32", k=1, persistent=True,
                 adaptive_prior=True, sparsity_target=None, weight_decay=0.0, sparsity_cost=0.1, negative_phase="gibbs",
                 n_chains=None, *, epochs=10, batch_size=100, learning_rate=0.01):
        self._keep_arguments(locals())
        self.n_visible = None if n_visible is None else check_positive_int(n_visible, "n_visible")
        self.n_hidden = check_positive_int(n_hidden, "n_hidden")
        if negative_phase not in NEGATIVE_PHASES:
            raise ValueError(f"negative_phase must be one of {NEGATIVE_PHASES}, got {negative_phase!r}")
        if negative_phase == "exact" and min(self.n_visible or 1, self.n_hidden) > MAX_EXACT_TRAINING:
            raise ValueError(f"negative_phase='exact' enumerates the smaller layer, here {min(self.n_visible, self.n_hidden)} "
                             f"units: at most {MAX_EXACT_TRAINING} (2^{MAX_EXACT_TRAINING} states per update); use "
                             "negative_phase='gibbs' (CD-k or PCD) for a model this large")
        self.negative_phase = negative_phase
        self.k = check_positive_int(k, "k")
        self.persistent, self.adaptive_prior = bool(persistent), bool(adaptive_prior)
        self.n_chains = None if n_chains is None else check_positive_int(n_chains, "n_chains")
        if sparsity_target is not None and not 0.0 < sparsity_target < 1.0:
            raise ValueError(f"sparsity_target must be in (0, 1), got {sparsity_target}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.sparsity_target, self.sparsity_cost = sparsity_target, float(sparsity_cost)
        self.weight_decay, self.seed = float(weight_decay), int(seed)
        self.epochs, self.batch_size, self.learning_rate = check_training_settings(epochs, batch_size, learning_rate)
        self.backend = B = get_backend()
        self.xp = B.xp
        self.dtype_name = B.dtype_name(dtype)
        init = B.rng(self.seed, host=True)
        self.params = {} if self.n_visible is None else {                # no width yet: fit learns it
            "W": 0.01 * init.normal((self.n_visible, self.n_hidden), self.dtype_name),   # N(0, 0.01^2)
            "b": B.zeros((self.n_visible,), self.dtype_name),
            "c": B.zeros((self.n_hidden,), self.dtype_name),
        }
        self.rng = B.rng(self.seed)
        self.chains = None            # PCD's persistent chains: visible states (n_chains, n_visible)
        self.chain_hidden = None      # and hidden states (n_chains, n_hidden), where the next sweeps start
        self.sparsity_q = None        # running mean activation of the hidden units, (n_hidden,)
        self.last_terms = {}

    # ----------------------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "seed": self.seed, "dtype": self.dtype_name,
                "k": self.k, "persistent": self.persistent, "adaptive_prior": self.adaptive_prior,
                "sparsity_target": self.sparsity_target, "weight_decay": self.weight_decay,
                "sparsity_cost": self.sparsity_cost, "negative_phase": self.negative_phase, "n_chains": self.n_chains}

    @staticmethod
    def parameter_sizes(config: dict):
        """The number of values of each parameter array (W, b, c) of a model of ``config``, from its sizes alone
        (a checkpoint's config is checked against its arrays before the model is built)."""
        n_visible, n_hidden = config["n_visible"], config["n_hidden"]
        return [n_visible * n_hidden, n_visible, n_hidden]

    def validate_data(self, v, name="v"):
        """``v`` as a checked backend array (batch, n_visible) in [0, 1] of the model's dtype."""
        return as_data(v, self.n_visible, self.dtype_name, backend=self.backend, unit_interval=True, name=name,
                       range_fix="rescale it (e.g. pixels / 255): binary units model values in [0, 1]")

    def set_param_arrays(self, new: dict) -> None:
        """Replace W, b, c by copies of the arrays in ``new`` (same shapes); ``set_params(new)`` calls it."""
        for key in ("W", "b", "c"):
            if key not in new:
                raise ValueError(f"parameters do not match a BernoulliRBM: {key!r} is missing")
            if tuple(new[key].shape) != tuple(self.params[key].shape):
                raise ValueError(f"parameter {key!r} has shape {tuple(new[key].shape)}, this model needs "
                                 f"{tuple(self.params[key].shape)}")
            self.params[key] = self.xp.asarray(self.backend.asarray(new[key], dtype=self.dtype_name), copy=True)

    def init_visible_bias(self, X, eps=1e-3) -> None:
        """b_i = log(p_i / (1 - p_i)) from the data's pixel means p_i, clipped to [eps, 1 - eps] (Hinton 2010, sec. 8)."""
        self.params["b"] = clipped_logit(self.xp.mean(self.validate_data(X, "X"), axis=0), eps)

    # ----------------------------------------------------------------------------------------------
    # Conditionals and Gibbs sampling
    # ----------------------------------------------------------------------------------------------
    def hidden_probs(self, v):
        """P(h = 1 | v) = sigmoid(c + v W), (batch, n_hidden) (``rbm.gradients.positive_phase``)."""
        return G.positive_phase(self.params, v)[1]

    def visible_probs(self, h):
        """P(v = 1 | h) = sigmoid(b + h W^T), (batch, n_visible) (``rbm.gradients.visible_probs``)."""
        return G.visible_probs(self.params, h)

    def gibbs(self, v, steps=1, rng=None):
        """``steps`` alternating Gibbs sweeps v -> h -> v from binary v; returns (v, P(h=1|v)) at the end."""
        rng = self.rng if rng is None else rng
        p = self.hidden_probs(v)
        if steps == 0:
            return v, p
        v, _, p = G.gibbs_sweeps(self.params, rng.bernoulli(p), steps, rng)
        return v, p

    def free_energy(self, v, preactivation=None):
        """F(v) = -b.v - sum_j softplus(c_j + (v W)_j), per example (batch,); ``preactivation`` = c + v W if known."""
        return G.free_energy(self.params, v, preactivation)

    def free_energy_grads(self, v):
        """Gradients of the batch mean of F(v): dF/dW = -v^T sigmoid(c + vW) / n, dF/db = -mean v, dF/dc = -mean sigmoid."""
        stats = G.statistics(v, self.hidden_probs(v))
        return {name: -s for name, s in stats.items()}

    # ----------------------------------------------------------------------------------------------
    # Training: the persistent chains, then one update
    # ----------------------------------------------------------------------------------------------
    def init_chains(self, n_chains, rng=None) -> None:
        """Create PCD's persistent chains: ``n_chains`` visible states v ~ Bernoulli(1/2) and their hidden states
        h ~ P(h | v) under the current parameters (where the first update's sweeps start)."""
        rng = self.rng if rng is None else rng
        n_chains = check_positive_int(n_chains, "n_chains")
        self.chains = rng.bernoulli(self.backend.zeros((n_chains, self.n_visible), self.dtype_name) + 0.5)
        self.chain_hidden = rng.bernoulli(self.hidden_probs(self.chains))

    def init_training_state(self, batch_size, rng=None) -> None:
        """Called by ``refvae.fit`` before the first epoch of a new run: PCD's chains, ``n_chains`` of them (the
        configuration's, else ``batch_size``), unless the model has chains already (from an earlier ``fit``,
        ``init_chains`` or a checkpoint: kept, as the parameters are). CD-k and the exact phase keep no chains."""
        if self.persistent and self.negative_phase == "gibbs" and self.chains is None:
            self.init_chains(self.n_chains or batch_size, rng)

    def _negative_phase(self, p_pos, rng):
        """(v_neg, a_neg, p_neg) after k sweeps: CD-k from the data, PCD from (and advancing) the chains."""
        if not self.persistent:
            return G.cd_negative_phase(self.params, p_pos, self.k, rng)
        if self.chains is None:
            raise RuntimeError("PCD's persistent chains do not exist yet: call model.init_chains(n_chains) first "
                               "(refvae.fit calls model.init_training_state(batch_size, rng) before the first epoch)")
        self.chains, a_neg, p_neg, self.chain_hidden = G.pcd_negative_phase(self.params, self.chain_hidden, self.k,
                                                                             rng)
        return self.chains, a_neg, p_neg

    def loss_and_grads(self, v, rng=None):
        """d(-mean log P(v))/d(params), estimated by CD-k / PCD or exact (``rbm.gradients``), and a monitored loss.

        ``rng`` draws the Gibbs samples (default: ``self.rng``). With PCD the chains advance k sweeps: create
        them first (``init_chains``; ``refvae.fit`` does it); a batch may hold fewer examples than there are chains.

        Returns
        -------
        loss : float
            ``negative_phase="gibbs"``: the free-energy gap mean F(v_data) - mean F(v_model), whose gradient
            with the negative samples held fixed is exactly ``grads`` (without penalties). It tracks the
            training signal, not the likelihood; use ``log_likelihood`` (exact or with AIS) for that. It costs
            no extra matrix product: both free energies reuse the hidden pre-activations of the two phases.
            ``negative_phase="exact"``: the exact mean negative log-likelihood, mean F(v) + log Z.
        grads : dict
            ``W``, ``b``, ``c``: positive phase from the data (probabilities), negative phase from the
            chains or exact; ``c`` is zero when ``adaptive_prior=False``.

        With ``negative_phase="exact"`` it also sets ``last_terms["prior_gap"]``, the largest
        |<P(h_j = 1 | v)>_batch - E_model[h_j]| (on the full data: the adaptive prior's gap, zero at its fixed point).
        """
        rng = self.rng if rng is None else rng
        xp = self.xp
        v = self.validate_data(v)
        a_pos, p_pos = G.positive_phase(self.params, v)                # (batch, n_hidden)
        pos = G.statistics(v, p_pos)
        if self.negative_phase == "exact":
            neg, log_z = G.exact_negative_phase(self)
            loss = xp.mean(self.free_energy(v, a_pos)) + log_z          # -mean log P(v) = mean F(v) + log Z
            # the adaptive prior's gap on this batch, max_j |<P(h_j = 1 | v)>_batch - E_model[h_j]| (fit records it)
            self.last_terms = {"prior_gap": float(xp.max(xp.abs(pos["c"] - neg["c"])))}
        else:
            v_neg, a_neg, p_neg = self._negative_phase(p_pos, rng)     # (chains, n_visible), (chains, n_hidden) x 2
            neg = G.statistics(v_neg, p_neg)
            loss = G.free_energy_gap(self.params, v, a_pos, v_neg, a_neg)
        grads = G.likelihood_gradient(pos, neg)
        if self.weight_decay:
            grads["W"] = grads["W"] + G.weight_decay_penalty(self.params, self.weight_decay)["W"]
        if self.sparsity_target is not None:
            self.sparsity_q, pull = G.sparsity_penalty(self.sparsity_q, pos, self.sparsity_target, self.sparsity_cost)
            grads = {name: g + pull[name] if name in pull else g for name, g in grads.items()}
        if not self.adaptive_prior:
            grads["c"] = xp.zeros_like(grads["c"])
        return float(self.backend.to_numpy(loss)), grads

    def loss(self, v, rng=None) -> float:
        """The loss of ``loss_and_grads`` on v, with no gradient and no change to the persistent chains.

        ``negative_phase="exact"``: the exact mean negative log-likelihood. ``"gibbs"``: the free-energy gap
        mean F(v) - mean F(v_model); CD-k runs its k sweeps from v (drawing from ``rng``, default ``self.rng``);
        PCD takes its chains as they are (CD-k's sweeps from v while there are none). ``fit`` records it for
        validation data, so that ``train_loss`` and ``val_loss`` are one quantity."""
        rng = self.rng if rng is None else rng
        xp = self.xp
        v = self.validate_data(v)
        if self.negative_phase == "exact":
            return float(xp.mean(self.free_energy(v))) + self.log_partition("exact")
        a_pos, p_pos = G.positive_phase(self.params, v)
        if self.persistent and self.chains is not None:
            v_neg, a_neg = self.chains, None
        else:
            v_neg, a_neg, _ = G.cd_negative_phase(self.params, p_pos, self.k, rng)
        return float(G.free_energy_gap(self.params, v, a_pos, v_neg, a_neg))

    def reconstruction_error(self, v) -> float:
        """Mean squared reconstruction error through P(h|v) (a monitor only: a poor proxy for the likelihood)."""
        xp = self.xp
        v = self.validate_data(v)
        return float(xp.mean(xp.sum((v - self.visible_probs(self.hidden_probs(v))) ** 2, axis=1)))

    # ----------------------------------------------------------------------------------------------
    # The two sides of the adaptive prior
    # ----------------------------------------------------------------------------------------------
    def aggregate_posterior(self, V):
        """<P(h = 1 | v)> over the data V: (n_hidden,) on the device."""
        return self.xp.mean(self.hidden_probs(self.validate_data(V, "V")), axis=0)

    def hidden_marginal(self, method="exact", n_chains=500, steps=200, seed=0, rng=None):
        """E_model[h]: exact by enumeration of the smaller layer, or from ``n_chains`` fresh Gibbs chains run for
        ``steps`` sweeps (drawn from ``rng``, default a generator seeded by ``seed``)."""
        if method == "exact":
            return model_expectations(self)["h"]
        if method == "gibbs":
            rng = self.backend.rng(seed) if rng is None else rng
            v = rng.bernoulli(self.backend.zeros((n_chains, self.n_visible), self.dtype_name) + 0.5)
            _, p = self.gibbs(v, steps, rng)
            return self.xp.mean(p, axis=0)
        raise ValueError(f"method must be 'exact' or 'gibbs', got {method!r}")

    def epoch_diagnostics(self, V) -> dict:
        """Recorded by ``fit`` after every epoch: the reconstruction error on V, the mean over hidden
        units of the aggregate posterior's firing rate, and for small models (smaller layer <= 16 units) the exact
        model marginal, the largest gap between the two, and the exact mean log-likelihood of V."""
        xp = self.xp
        agg = self.aggregate_posterior(V)
        out = {"reconstruction_error": self.reconstruction_error(V), "aggregate_posterior_mean": float(xp.mean(agg))}
        if min(self.n_visible, self.n_hidden) <= 16:
            marginal = self.hidden_marginal("exact")
            out["model_marginal_mean"] = float(xp.mean(marginal))
            out["prior_gap_max"] = float(xp.max(xp.abs(agg - marginal)))
            out["exact_log_likelihood"] = float(xp.mean(self.log_likelihood(V)))     # log Z by enumeration
        return out

    # ----------------------------------------------------------------------------------------------
    # Likelihoods and samples
    # ----------------------------------------------------------------------------------------------
    def log_partition(self, method="exact", **kwargs):
        """log Z: ``method="exact"`` (enumeration, small models) or ``"ais"`` (see rbm.partition.ais_log_partition)."""
        from .partition import ais_log_partition, exact_log_partition

        if method == "exact":
            return exact_log_partition(self, **kwargs)
        if method == "ais":
            return ais_log_partition(self, **kwargs)
        raise ValueError(f"method must be 'exact' or 'ais', got {method!r}")

    def log_likelihood(self, V, log_z=None):
        """log P(v) = -F(v) - log Z per example (batch,); log Z exact unless given (e.g. from AIS)."""
        V = self.validate_data(V, "V")
        if log_z is None:
            log_z = self.log_partition("exact")
        return -self.free_energy(V) - log_z

    def sample(self, n, steps=1000, seed=None, rng=None):
        """n samples after ``steps`` Gibbs sweeps of the persistent chains (fresh random chains if there are
        fewer than n), which are left as they were; returns P(v = 1 | h) of the last sweep, (n, n_visible).
        Draws from ``rng``; without it, from a generator seeded by ``seed``, else from ``self.rng``."""
        n, steps = check_positive_int(n, "n"), check_positive_int(steps, "steps")
        if rng is None:
            rng = self.rng if seed is None else self.backend.rng(seed)
        if self.chains is not None and self.chains.shape[0] >= n:
            v = self.chains[:n, :]
        else:
            v = rng.bernoulli(self.backend.zeros((n, self.n_visible), self.dtype_name) + 0.5)
        v, _ = self.gibbs(v, steps - 1, rng) if steps > 1 else (v, None)
        h = rng.bernoulli(self.hidden_probs(v))
        return self.visible_probs(h)

    # ----------------------------------------------------------------------------------------------
    # The estimator interface (refvae.estimator): what it asks of the model
    # ----------------------------------------------------------------------------------------------
    _width_argument = "n_visible"

    def _data_width(self):
        return self.n_visible

    def _new_optimizer(self):
        return SGD(self.learning_rate, momentum=0.9)

    def _start_training(self, X) -> None:
        self.init_visible_bias(X)

    def _transform(self, X):
        """P(h = 1 | x), (n, n_hidden)."""
        return self.hidden_probs(X)

    def _score_samples(self, X):
        """log P(x) = -F(x) - log Z, (n,): log Z exact for a small model, else from AIS (a fresh seeded generator)."""
        if min(self.n_visible, self.n_hidden) <= MAX_EXACT_TRAINING:
            return self.log_likelihood(X)
        return self.log_likelihood(X, log_z=self.log_partition("ais", rng=self._query_rng()))

    @property
    def components_(self):
        """W^T, a host copy (n_hidden, n_visible): scikit-learn's name for the weights."""
        return self._host_param("W").T

    @property
    def intercept_hidden_(self):
        """c, a host copy (n_hidden,): scikit-learn's name for the hidden biases."""
        return self._host_param("c")

    @property
    def intercept_visible_(self):
        """b, a host copy (n_visible,): scikit-learn's name for the visible biases."""
        return self._host_param("b")

    def _host_param(self, name):
        if self.n_visible is None:
            raise NotFittedError(f"this BernoulliRBM has no {name} yet: fit(X) learns the data width first")
        return self.backend.to_numpy(self.params[name], copy=True)

    # ----------------------------------------------------------------------------------------------
    # Checkpoints
    # ----------------------------------------------------------------------------------------------
    def checkpoint_arrays(self) -> dict:
        B = self.backend
        arrays = {f"model/{k}": B.to_numpy(v, copy=True) for k, v in self.params.items()}
        state = {"chains": self.chains, "chain_hidden": self.chain_hidden, "sparsity_q": self.sparsity_q}
        arrays.update({f"state/{k}": B.to_numpy(v, copy=True) for k, v in state.items() if v is not None})
        return arrays

    def set_state(self, state: dict) -> None:
        """Restore the persistent chains and the sparsity average (from a checkpoint's ``state/`` arrays). A
        checkpoint written before the chains kept their hidden states has ``chains`` only: their hidden states
        are then drawn afresh, h ~ P(h | chains), from ``self.rng``. Every array is checked first (shape, finite,
        binary states, an average in [0, 1]): a ValueError names the one that is wrong."""
        B = self.backend
        chains = tuple(getattr(state.get("chains"), "shape", ()))
        shapes = {"chains": (None, self.n_visible), "chain_hidden": (chains[0] if chains else None, self.n_hidden),
                  "sparsity_q": (self.n_hidden,)}      # the chains' number n, then the layer each state is of
        unknown = sorted(set(state) - set(shapes))
        if unknown:
            raise ValueError(f"unknown state {unknown}: a BernoulliRBM keeps chains, chain_hidden and sparsity_q")
        if "chain_hidden" in state and "chains" not in state:
            raise ValueError("state chain_hidden (the chains' hidden states) without the chains themselves")
        checked = {name: check_state_array(a, name, shapes[name], binary=name != "sparsity_q",
                                           unit_interval=name == "sparsity_q") for name, a in state.items()}
        get = lambda name: B.asarray(checked[name], dtype=self.dtype_name) if name in checked else None   # noqa: E731
        self.chains, self.chain_hidden, self.sparsity_q = get("chains"), get("chain_hidden"), get("sparsity_q")
        if self.chains is not None and self.chain_hidden is None:
            self.chain_hidden = self.rng.bernoulli(self.hidden_probs(self.chains))

    def __repr__(self):
        kind = "exact" if self.negative_phase == "exact" else f"PCD-{self.k}" if self.persistent else f"CD-{self.k}"
        return f"BernoulliRBM({self.n_visible}, {self.n_hidden}, {kind}, adaptive_prior={self.adaptive_prior})"

