"""The Helmholtz machine: a sigmoid belief network and its recognition network, trained by wake-sleep.

Layers h_0 = x (n_0 = n_visible units), h_1, ..., h_L (``layer_sizes = (n_0, n_1, ..., n_L)``), all binary.

Generative model P, top-down::

    P(h_L)            = prod_j Bernoulli(h_L,j | sigmoid(b_j))          b = params["prior.b"]  (prior="factorial")
                      = exp(-F(h_L)) / Z  of an RBM over h_L                                   (prior="rbm")
    P(h_{l-1} | h_l)  = Bernoulli(h_{l-1} | sigmoid(h_l G_l + g_l))       G_l: (n_l, n_{l-1})  "gen.l.W", "gen.l.b"

Recognition model Q, bottom-up::

    Q(h_l | h_{l-1})  = Bernoulli(h_l | sigmoid(h_{l-1} R_l + r_l))       R_l: (n_{l-1}, n_l)  "rec.l.W", "rec.l.b"

Every layer is a logistic regression of its units on the layer that drives it. With logits a and target t,

    log Bernoulli(t | sigmoid(a)) = sum_j [t_j a_j - softplus(a_j)],     d(-log P)/da = sigmoid(a) - t,

so each update is the delta rule: (prediction - target) times the driving layer.

Wake phase (Hinton, Dayan, Frey & Neal 1995): draw h ~ Q(h|x) and move the generative parameters along
d log P(x, h). For the factorial prior this moves the top biases towards the recognition model's top-layer
states: grads["prior.b"] = sigmoid(b) - <h_L>, zero on average exactly when P(h_L = 1) equals the average
recognition probability <Q(h_L = 1 | x)> over the data. That is the adaptive prior: P(z) <- <Q(z|x)>.
``prior_update="moment"`` takes that step directly, p <- (1 - rho) p + rho <Q(h_L = 1 | h_{L-1})>_batch with
p = sigmoid(b). ``prior="rbm"`` replaces the factorial prior by a :class:`rbm.BernoulliRBM` over h_L trained
by contrastive divergence on the wake-phase samples of the top layer (the top of a deep belief net, Hinton,
Osindero & Teh 2006).

Sleep phase: dream (h, x) ~ P and move the recognition parameters along d log Q(h | x). With the RBM prior the
dreams start from persistent Gibbs chains of the RBM that advance ``rbm_k`` sweeps per update (as PCD's chains do)
rather than from fresh chains, which would need hundreds of sweeps per update.

Reweighted wake-sleep (``algorithm="rws"``, Bornschein & Bengio 2015): draw k samples h_i ~ Q(.|x), with
importance weights w_i = P(x, h_i) / Q(h_i | x) and normalised weights omega_i = w_i / sum_j w_j. The wake
update of P is -sum_i omega_i d log P(x, h_i), which is exactly the gradient of the importance-weighted bound
-log (1/k sum_i w_i) with respect to P's parameters; the wake update of Q is -sum_i omega_i d log Q(h_i | x).
Q's update here is the average of that wake update and the sleep update (the paper found both together work
best). With k = 1 the weights are all 1 and the P update is the wake-sleep one.

Exact maximum likelihood (``algorithm="exact"``, factorial prior, at most MAX_HIDDEN_ENUMERATION = 20 hidden
units in all): the wake update with every configuration h weighted by its exact posterior instead of one sample,

    d(-log P(x))/d theta_P = sum_h P(h | x) d(-log P(x, h))/d theta_P,     P(h | x) = P(x, h) / P(x),

is the exact gradient of the negative log-likelihood; the recognition model follows
sum_h P(h | x) d(-log Q(h | x))/d theta_Q, the gradient of KL(P(h | x) || Q(h | x)), so that Q tracks the exact
posterior and stays usable for sampling and importance estimates. The loss is the exact -log P(x).
:meth:`HelmholtzMachine._exact_step` is that computation as written; training runs its twin
``wakesleep.fast.exact_step`` (``fast_exact = True``), which takes the sums in a cheaper order.

Sign convention: ``grads`` are descent directions, d(loss)/d(param) of the quantity each phase minimises
(-log P(x, h) for the wake phase, -log Q(h | x) for the sleep phase); optimisers subtract them. The monitored
loss is the negative ELBO (wake-sleep) or the negative k-sample importance-weighted bound (RWS), per example.

References
----------
G. E. Hinton, P. Dayan, B. J. Frey, R. M. Neal, "The wake-sleep algorithm for unsupervised neural networks",
Science 268, 1995.
P. Dayan, G. E. Hinton, R. M. Neal, R. S. Zemel, "The Helmholtz machine", Neural Computation 7, 1995.
J. Bornschein, Y. Bengio, "Reweighted wake-sleep", ICLR 2015.
G. E. Hinton, S. Osindero, Y.-W. Teh, "A fast learning algorithm for deep belief nets", Neural Computation 2006.
"""

from __future__ import annotations

import math

from refvae.backend import get_backend
from refvae.checkpoint import Checkpointable, register_model
from refvae.layers import Linear, ParameterSlots
from refvae.numerics import bernoulli_log_prob, logsumexp, sigmoid, softplus
from refvae.validation import as_data, check_positive_int

from .fast import exact_step
from .likelihood import MAX_HIDDEN_ENUMERATION, exact_log_likelihood, importance_log_likelihood, paired_with_states

__all__ = ["ALGORITHMS", "EXACT_ROWS", "MAX_HIDDEN_ENUMERATION", "PRIORS", "PRIOR_UPDATES", "HelmholtzMachine"]

ALGORITHMS = ("wake-sleep", "rws", "exact")
EXACT_ROWS = 2**15   # (example, hidden state) pairs per block of the exact step
PRIORS = ("factorial", "rbm")
PRIOR_UPDATES = ("gradient", "moment")


def _check_layer_sizes(layer_sizes):
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise ValueError(f"layer_sizes must be a sequence (n_visible, n_hidden_1, ..., n_top), got {layer_sizes!r}") \
            from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes must name the visible layer and at least one hidden layer, e.g. (784, 200); "
                         f"got {sizes!r}")
    return tuple(check_positive_int(n, f"layer_sizes[{i}]") for i, n in enumerate(sizes))


@register_model
class HelmholtzMachine(ParameterSlots, Checkpointable):
    """A Helmholtz machine with binary stochastic layers, trained by wake-sleep or reweighted wake-sleep.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_visible, n_hidden_1, ..., n_top)``, bottom to top.
    seed : int
        Seeds the initial weights (drawn on the host: the same on every backend) and the sampler.
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
        p <- (1 - rho) p + rho <Q(h_L = 1 | h_{L-1})>_batch applied in ``loss_and_grads``.
    prior_rate : float
        rho of the moment-matching step.
    rbm_hidden : int, optional
        Hidden units of the RBM prior (default: as many as the top layer, at most 16, so that its log Z,
        needed by every likelihood, is exact and cheap). ``rbm_k``: its CD steps.
    init_std : float, optional
        None: the layers' default initialisation (weights and biases uniform in ±1/sqrt(fan-in), as PyTorch's
        ``nn.Linear``). A number: weights N(0, init_std²) and biases 0 (0.0 starts from all-zero weights; the
        sampling breaks the symmetry).
    """

    def __init__(self, layer_sizes, seed=0, dtype="float32", algorithm="wake-sleep", k=1, prior="factorial",
                 prior_update="gradient", prior_rate=0.05, rbm_hidden=None, rbm_k=1, init_std=None):
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        self.k = check_positive_int(k, "k")
        if algorithm != "rws" and self.k != 1:
            raise ValueError(f"k={self.k} samples per example is reweighted wake-sleep: use algorithm='rws' "
                             f"({algorithm} takes k=1)")
        if algorithm == "exact":
            n_hidden = sum(self.layer_sizes[1:])
            if n_hidden > MAX_HIDDEN_ENUMERATION:
                raise ValueError(f"algorithm='exact' enumerates all 2^{n_hidden} configurations of the {n_hidden} "
                                 f"hidden units (layers {self.layer_sizes[1:]}): at most {MAX_HIDDEN_ENUMERATION}; "
                                 "use algorithm='wake-sleep' or 'rws' for a model this large")
            if prior != "factorial":
                raise ValueError("algorithm='exact' needs prior='factorial' (the RBM prior's exact gradient would "
                                 "need its own enumeration inside every hidden configuration)")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        if prior_update not in PRIOR_UPDATES:
            raise ValueError(f"prior_update must be one of {PRIOR_UPDATES}, got {prior_update!r}")
        if prior == "rbm" and prior_update != "gradient":
            raise ValueError("prior_update='moment' applies to the factorial prior; the RBM prior is trained by "
                             "contrastive divergence on the wake samples (leave prior_update='gradient')")
        if not 0.0 < float(prior_rate) <= 1.0:
            raise ValueError(f"prior_rate must be in (0, 1], got {prior_rate}")
        self.algorithm, self.prior, self.prior_update = algorithm, prior, prior_update
        self.prior_rate, self.seed = float(prior_rate), int(seed)
        self.backend = B = get_backend()
        self.xp = B.xp
        self.dtype_name = B.dtype_name(dtype)
        sizes = self.layer_sizes
        n_top = sizes[-1]
        init = B.rng(self.seed, host=True)
        # generative[l-1] maps h_l -> logits of h_{l-1}; recognition[l-1] maps h_{l-1} -> logits of h_l.
        self.generative = [Linear(sizes[l], sizes[l - 1], init, self.dtype_name) for l in range(1, len(sizes))]
        self.recognition = [Linear(sizes[l - 1], sizes[l], init, self.dtype_name) for l in range(1, len(sizes))]
        self._check_layers()
        if init_std is not None:
            if not float(init_std) >= 0.0:
                raise ValueError(f"init_std must be >= 0 (or None for the default initialisation), got {init_std}")
            for layer in self.generative + self.recognition:
                W = layer.params["W"]
                layer.params["W"] = float(init_std) * init.normal(tuple(W.shape), self.dtype_name)
                layer.params["b"] = B.zeros(tuple(layer.params["b"].shape), self.dtype_name)
        self.init_std = None if init_std is None else float(init_std)
        self.rbm_k = check_positive_int(rbm_k, "rbm_k")
        self.rbm_hidden, self.prior_rbm = None, None
        if prior == "factorial":
            self.prior_params = {"b": B.zeros((n_top,), self.dtype_name)}          # P(h_L = 1) = 1/2 at the start
        else:
            from rbm import BernoulliRBM

            self.rbm_hidden = check_positive_int(rbm_hidden if rbm_hidden is not None else min(n_top, 16),
                                                 "rbm_hidden")
            self.prior_rbm = BernoulliRBM(n_top, self.rbm_hidden, seed=self.seed, dtype=self.dtype_name,
                                          k=self.rbm_k, persistent=False)
            self.prior_params = self.prior_rbm.params                             # the same dict: one set of arrays
        self.rng = B.rng((self.seed, 1))   # the RBM prior draws from it too (see the ``rng`` property)
        self.fast_exact = True        # algorithm="exact": run wakesleep.fast.exact_step, the twin of _exact_step
        self.prior_chains = None      # the RBM prior's persistent sleep-phase chains, (n_chains, n_L)

    @property
    def rng(self):
        """The machine's random generator: every draw of training and sampling comes from it, the RBM prior's
        CD samples included. Setting it (``refvae.fit`` reseeds it from (seed, epoch) every epoch) also sets the
        RBM prior's generator to the same object, so that a run resumed from a checkpoint repeats the draws."""
        return self._rng

    @rng.setter
    def rng(self, value):
        self._rng = value
        if self.prior_rbm is not None:
            self.prior_rbm.rng = value

    # ----------------------------------------------------------------------------------------------
    # Parameters
    # ----------------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """L, the number of hidden layers."""
        return len(self.layer_sizes) - 1

    def _check_layers(self):
        """The two parallel lists: generative[l-1] is (n_l -> n_{l-1}), recognition[l-1] is (n_{l-1} -> n_l)."""
        sizes = self.layer_sizes
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
        for l in range(1, len(self.layer_sizes)):
            for key in ("W", "b"):
                yield f"gen.{l}.{key}", self.generative[l - 1].params, key
        for l in range(1, len(self.layer_sizes)):
            for key in ("W", "b"):
                yield f"rec.{l}.{key}", self.recognition[l - 1].params, key

    @property
    def config(self) -> dict:
        return {"layer_sizes": list(self.layer_sizes), "seed": self.seed, "dtype": self.dtype_name,
                "algorithm": self.algorithm, "k": self.k, "prior": self.prior, "prior_update": self.prior_update,
                "prior_rate": self.prior_rate, "rbm_hidden": self.rbm_hidden, "rbm_k": self.rbm_k,
                "init_std": self.init_std}

    def validate_data(self, x, name="x"):
        """``x`` as a checked backend array (batch, n_visible) in [0, 1] of the model's dtype."""
        return as_data(x, self.layer_sizes[0], self.dtype_name, unit_interval=True, name=name,
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

    # ----------------------------------------------------------------------------------------------
    # The two networks
    # ----------------------------------------------------------------------------------------------
    def generative_logits(self, l, h_l):
        """Logits of P(h_{l-1} = 1 | h_l) = h_l G_l + g_l, (batch, n_{l-1}); l = 1 gives those of x."""
        return self.generative[l - 1].forward(h_l)[0]

    def recognition_logits(self, l, h_below):
        """Logits of Q(h_l = 1 | h_{l-1}) = h_{l-1} R_l + r_l, (batch, n_l); h_0 = x."""
        return self.recognition[l - 1].forward(h_below)[0]

    def recognize(self, x, rng=None):
        """A sample h ~ Q(h | x), bottom-up: (hs, top_probs) with hs = [h_1, ..., h_L], (batch, n_l) each, and
        top_probs = Q(h_L = 1 | h_{L-1}), (batch, n_L)."""
        hs, rec_logits = self._recognize(x, rng or self.rng)
        return hs, sigmoid(rec_logits[-1])

    def _recognize(self, x, rng):
        """(hs, rec_logits): a sample h ~ Q(h | x) and the logits of Q(h_l = 1 | h_{l-1}) used to draw it."""
        hs, rec_logits, below = [], [], x
        for l in range(1, len(self.layer_sizes)):
            logits = self.recognition_logits(l, below)
            below = rng.bernoulli(sigmoid(logits))
            rec_logits.append(logits)
            hs.append(below)
        return hs, rec_logits

    def sample_prior(self, n, rng=None, gibbs_steps=200, persistent=False):
        """h_L ~ P(h_L), (n, n_L): independent Bernoullis, or Gibbs sampling of the RBM prior.

        RBM prior: fresh random chains run for ``gibbs_steps`` sweeps; with ``persistent=True`` (the sleep
        phase) chains kept across calls advance ``rbm_k`` sweeps per call, as PCD's fantasy particles do
        (started with ``gibbs_steps`` sweeps of burn-in, and restarted if a larger batch asks for more).
        """
        rng = rng or self.rng
        B, n_top = self.backend, self.layer_sizes[-1]
        if self.prior == "factorial":
            return rng.bernoulli(self.xp.broadcast_to(sigmoid(self.prior_params["b"]), (n, n_top)))
        if persistent and self.prior_chains is not None and self.prior_chains.shape[0] >= n:
            self.prior_chains, _ = self.prior_rbm.gibbs(self.prior_chains, self.rbm_k, rng)
            return self.prior_chains[:n, :]
        v = rng.bernoulli(B.zeros((n, n_top), self.dtype_name) + 0.5)
        v, _ = self.prior_rbm.gibbs(v, gibbs_steps, rng)
        if persistent:
            self.prior_chains = v
        return v

    def dream(self, n, rng=None, persistent=False):
        """Ancestral samples (x, hs) ~ P: h_L from the prior, then each layer from the one above, (n, n_l) each.
        ``persistent``: the RBM prior's samples come from its persistent chains (the sleep phase)."""
        rng = rng or self.rng
        h = self.sample_prior(n, rng, persistent=persistent)
        hs = [h]
        for l in range(self.n_layers, 0, -1):
            h = rng.bernoulli(sigmoid(self.generative_logits(l, h)))
            hs.append(h)
        x = hs.pop()
        return x, hs[::-1]

    # ----------------------------------------------------------------------------------------------
    # Log-probabilities of given states
    # ----------------------------------------------------------------------------------------------
    def _rbm_log_z(self):
        return self.prior_rbm.log_partition("exact")

    def log_prior(self, h_top, log_z=None):
        """log P(h_L) per example (batch,): sum_j [h_j b_j - softplus(b_j)], or -F(h_L) - log Z for the RBM prior
        (log Z exact unless given)."""
        if self.prior == "factorial":
            b = self.prior_params["b"]
            return h_top @ b - self.xp.sum(softplus(b))
        if log_z is None:
            log_z = self._rbm_log_z()
        return -self.prior_rbm.free_energy(h_top) - log_z

    def log_joint(self, x, hs, log_z=None):
        """log P(x, h_1, ..., h_L) = log P(h_L) + sum_l log P(h_{l-1} | h_l), per example (batch,)."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        return self._log_joint(x, hs, self._gen_logits(hs), log_z)

    def _gen_logits(self, hs):
        """Logits of P(h_{l-1} = 1 | h_l) for l = 1..L: the generative forward pass on given states."""
        return [self.generative_logits(l, hs[l - 1]) for l in range(1, len(self.layer_sizes))]

    def _log_joint(self, x, hs, gen_logits, log_z=None):
        out = self.log_prior(hs[-1], log_z)
        below = [x] + hs[:-1]
        for l in range(1, len(self.layer_sizes)):
            out = out + bernoulli_log_prob(below[l - 1], gen_logits[l - 1])
        return out

    def log_q(self, hs, x):
        """log Q(h_1, ..., h_L | x) = sum_l log Q(h_l | h_{l-1}), per example (batch,)."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        return self._log_q(hs, self._rec_logits(x, hs))

    def _rec_logits(self, x, hs):
        """Logits of Q(h_l = 1 | h_{l-1}) for l = 1..L: the recognition forward pass on given states."""
        below = [x] + hs[:-1]
        return [self.recognition_logits(l, below[l - 1]) for l in range(1, len(self.layer_sizes))]

    def _log_q(self, hs, rec_logits):
        out = 0.0
        for l in range(1, len(self.layer_sizes)):
            out = out + bernoulli_log_prob(hs[l - 1], rec_logits[l - 1])
        return out

    # ----------------------------------------------------------------------------------------------
    # The hand-written updates
    # ----------------------------------------------------------------------------------------------
    def _row_weights(self, weights, n):
        """Per-row weights (n, 1): 1/n each unless given (e.g. RWS's omega_i / n_examples)."""
        if weights is None:
            return None
        if tuple(weights.shape) != (n,):
            raise ValueError(f"weights must have shape ({n},), one per row; got {tuple(weights.shape)}")
        return self.xp.reshape(weights, (n, 1))

    def _delta_grads(self, inputs, logits, targets, w):
        """Gradients of sum_rows w_row * (-log Bernoulli(targets | sigmoid(logits))) for logits = inputs W + b:
        the delta rule, dW = inputs^T (w * (sigmoid(logits) - targets)), db = sum_rows w * (...)."""
        xp = self.xp
        delta = sigmoid(logits) - targets                                  # d(-log P)/d logits, (batch, n_out)
        delta = delta / inputs.shape[0] if w is None else delta * w
        return {"W": inputs.T @ delta, "b": xp.sum(delta, axis=0)}         # (n_in, batch) @ (batch, n_out)

    def wake_grads(self, x, hs, weights=None) -> dict:
        """The wake update: gradients of -sum_rows weight_row * log P(x_row, h_row) for the given states.

        ``weights`` (batch,) default to 1/batch (the mean); RWS passes omega_i / n_examples. Returns the
        ``gen.*`` gradients and, for the factorial prior, ``prior.b`` = sum_rows weight (sigmoid(b) - h_L).
        The RBM prior is trained by CD instead (see ``loss_and_grads``); its gradient is not included here.
        """
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        return self._wake_grads(x, hs, weights, self._gen_logits(hs))

    def _wake_grads(self, x, hs, weights, gen_logits):
        xp = self.xp
        n = x.shape[0]
        w = self._row_weights(weights, n)
        below = [x] + hs[:-1]
        grads = {}
        if self.prior == "factorial":
            h_top = hs[-1]
            mean_h = xp.mean(h_top, axis=0) if w is None else xp.sum(w * h_top, axis=0)
            total = 1.0 if w is None else xp.sum(w)
            grads["prior.b"] = sigmoid(self.prior_params["b"]) * total - mean_h   # d(-log P(h_L))/db
        for l in range(1, len(self.layer_sizes)):
            g = self._delta_grads(hs[l - 1], gen_logits[l - 1], below[l - 1], w)
            grads[f"gen.{l}.W"], grads[f"gen.{l}.b"] = g["W"], g["b"]
        return grads

    def sleep_grads(self, x, hs, weights=None) -> dict:
        """The sleep update (or RWS's weighted wake update of Q): gradients of -sum_rows weight * log Q(h | x)
        for the given states, ``rec.*`` only; ``weights`` default to 1/batch."""
        x = self.validate_data(x)
        hs = self._states(hs, x.shape[0])
        return self._sleep_grads(x, hs, weights, self._rec_logits(x, hs))

    def _sleep_grads(self, x, hs, weights, rec_logits):
        w = self._row_weights(weights, x.shape[0])
        below = [x] + hs[:-1]
        grads = {}
        for l in range(1, len(self.layer_sizes)):
            g = self._delta_grads(below[l - 1], rec_logits[l - 1], hs[l - 1], w)
            grads[f"rec.{l}.W"], grads[f"rec.{l}.b"] = g["W"], g["b"]
        return grads

    def _repeat(self, x, k):
        """Each row of x repeated k times in a row: (n * k, d), rows i*k .. i*k + k - 1 copies of x[i]."""
        xp = self.xp
        n, d = x.shape
        return xp.reshape(xp.broadcast_to(xp.expand_dims(x, axis=1), (n, k, d)), (n * k, d))

    def loss_and_grads(self, x):
        """One wake-sleep (or RWS) update direction for the batch x (batch, n_visible), and the monitored loss.

        The algorithm's step (:meth:`_wake_sleep_step` or :meth:`_reweighted_wake_sleep_step`) gives the loss and
        the ``gen.*`` and ``rec.*`` gradients; the prior's variant (:meth:`_prior_update`) adds ``prior.*``.

        Side effects, besides drawing from ``self.rng``: with ``prior="rbm"`` the persistent sleep chains
        (``prior_chains``) advance ``rbm_k`` sweeps; with ``prior_update="moment"`` the moment-matching step is
        taken here, on ``params["prior.b"]`` (its returned gradient is then zero).

        Returns
        -------
        loss : float
            Wake-sleep: the one-sample negative ELBO, mean over the batch of -(log P(x, h) - log Q(h | x)),
            h ~ Q. RWS: the negative k-sample importance-weighted bound -log (1/k sum_i w_i), mean over the
            batch (nats per example; a stochastic upper bound on -log P(x)).
        grads : dict
            ``gen.*`` and ``prior.*`` from the wake phase (the RBM prior: its CD-k estimate on the wake samples
            of h_L; the factorial prior with ``prior_update="moment"``: zero, its step is taken here), ``rec.*``
            from the sleep phase (RWS: the mean of the weighted wake update of Q and the sleep update).
        """
        x = self.validate_data(x)
        if self.algorithm == "wake-sleep":
            loss, grads, top_states, top_mean = self._wake_sleep_step(x)
        elif self.algorithm == "rws":
            loss, grads, top_states, top_mean = self._reweighted_wake_sleep_step(x)
        elif self.fast_exact:                                                  # its tested twin (wakesleep/fast.py)
            loss, grads, top_states, top_mean = exact_step(self, x)
        else:
            loss, grads, top_states, top_mean = self._exact_step(x)
        grads.update(self._prior_update(top_states, top_mean))
        return float(self.backend.to_numpy(loss)), grads

    def _wake_sleep_step(self, x):
        """Wake-sleep (Hinton, Dayan, Frey & Neal 1995) on the batch x (n, n_visible).

        Returns (loss, grads, top_states, top_mean): the one-sample negative ELBO (a 0-d array), the wake update of
        P and the sleep update of Q, and the top layer's wake states and mean recognition probabilities for the
        prior's update.
        """
        xp = self.xp
        hs, rec_logits = self._recognize(x, self.rng)                           # wake: h ~ Q(h | x)
        gen_logits = self._gen_logits(hs)
        log_w = self._log_joint(x, hs, gen_logits) - self._log_q(hs, rec_logits)   # log P(x, h) - log Q(h | x)
        grads = self._wake_grads(x, hs, None, gen_logits)                       # d(-log P(x, h)) / d(gen, prior)
        grads.update(self._sleep_phase(x.shape[0]))                             # d(-log Q(h | x)) / d rec at dreams
        loss = -xp.mean(log_w)                                                  # one-sample negative ELBO
        return loss, grads, hs[-1], xp.mean(sigmoid(rec_logits[-1]), axis=0)

    def _reweighted_wake_sleep_step(self, x):
        """Reweighted wake-sleep (Bornschein & Bengio 2015) with k samples per example, on the batch x.

        Returns (loss, grads, top_states, top_mean) as :meth:`_wake_sleep_step`, with the negative k-sample
        importance-weighted bound as the loss, the omega-weighted wake updates of P and Q, Q's being averaged
        with the sleep update, and the top states resampled by their weights.
        """
        xp = self.xp
        n, k = x.shape[0], self.k
        xs = self._repeat(x, k)                                                 # (n * k, n_visible)
        hs, rec_logits = self._recognize(xs, self.rng)                          # h_i ~ Q(h | x), k per example
        gen_logits = self._gen_logits(hs)
        log_w = self._log_joint(xs, hs, gen_logits) - self._log_q(hs, rec_logits)
        log_w = xp.reshape(log_w, (n, k))                                       # log w_i, (n, k)
        lse = logsumexp(log_w, axis=1, keepdims=True)
        loss = -xp.mean(lse) + math.log(k)                                      # -log(1/k sum_i w_i)
        omega = xp.exp(log_w - lse)                                             # normalised weights, (n, k)
        weights = xp.reshape(omega, (n * k,)) / n
        sleep = self._sleep_phase(n)
        grads = self._wake_grads(xs, hs, weights, gen_logits)                   # -sum omega d log P(x, h_i)
        q_wake = self._sleep_grads(xs, hs, weights, rec_logits)                 # -sum omega d log Q(h_i | x)
        grads.update({name: 0.5 * (q_wake[name] + sleep[name]) for name in sleep})
        top_mean = xp.sum(xp.reshape(weights, (n * k, 1)) * sigmoid(rec_logits[-1]), axis=0)
        return loss, grads, self._resample(hs[-1], omega), top_mean

    def _exact_step(self, x):
        """Exact maximum likelihood on the batch x (n, n_visible): every hidden configuration h, weighted by its
        exact posterior P(h | x) = exp(log P(x, h) - log P(x)).

        The wake update of P with these weights, -sum_x sum_h P(h|x)/n d log P(x, h), is the exact gradient of
        -mean log P(x); the same weights on -d log Q(h | x) give the gradient of mean KL(P(h|x) || Q(h|x)) for Q.
        The configurations come in blocks of states, each paired with every example (at most EXACT_ROWS pairs).

        Returns (loss, grads, None, top_mean): the exact -mean log P(x), the gradients, and the exact mean
        posterior probability of the top layer <P(h_L = 1 | x)> for the moment-matching prior.
        """
        xp = self.xp
        n = x.shape[0]
        H = sum(self.layer_sizes[1:])
        log_px = exact_log_likelihood(self, x)                                 # log P(x), (n,): the normaliser
        states_per_block = max(1, EXACT_ROWS // n)
        grads, top_mean = {}, None
        for start in range(0, 2 ** H, states_per_block):
            stop = min(start + states_per_block, 2 ** H)
            m = stop - start
            xs, hs = paired_with_states(self, x, start, stop)                   # row i*m + s: (x_i, state s)
            gen_logits = self._gen_logits(hs)
            log_joint = self._log_joint(xs, hs, gen_logits)                     # log P(x_i, h_s), (n * m,)
            log_px_rows = xp.reshape(xp.broadcast_to(xp.reshape(log_px, (n, 1)), (n, m)), (n * m,))
            weights = xp.exp(log_joint - log_px_rows) / n                       # P(h_s | x_i) / n
            block = self._wake_grads(xs, hs, weights, gen_logits)               # -sum w d log P(x, h)
            block.update(self._sleep_grads(xs, hs, weights, self._rec_logits(xs, hs)))   # -sum w d log Q(h | x)
            block_top = xp.sum(xp.reshape(weights, (n * m, 1)) * hs[-1], axis=0)
            grads = block if not grads else {name: grads[name] + g for name, g in block.items()}
            top_mean = block_top if top_mean is None else top_mean + block_top
        return -xp.mean(log_px), grads, None, top_mean

    def _sleep_phase(self, n):
        """The sleep update of Q on n dreams (h, x) ~ P (with the RBM prior, from its persistent chains)."""
        x_dream, h_dream = self.dream(n, persistent=True)
        return self._sleep_grads(x_dream, h_dream, None, self._rec_logits(x_dream, h_dream))

    def _prior_update(self, top_states, top_mean) -> dict:
        """The prior's variant: ``prior.*`` gradients to add to the step's (or a step taken here).

        - factorial prior, ``prior_update="gradient"``: nothing to add (the wake update holds ``prior.b``);
        - factorial prior, ``prior_update="moment"``: p <- (1 - rho) p + rho <Q(h_L = 1 | .)> taken here, and a zero
          gradient for ``prior.b``;
        - RBM prior: its CD-k gradient on the top layer's wake states.
        """
        if self.prior == "rbm":
            _, rbm_grads = self.prior_rbm.loss_and_grads(top_states)
            return {f"prior.{name}": g for name, g in rbm_grads.items()}
        if self.prior_update == "moment":
            self._moment_step(top_mean)
            return {"prior.b": self.xp.zeros_like(self.prior_params["b"])}
        return {}

    def _resample(self, states, omega):
        """One row per example drawn from its k rows with probabilities omega (batch, k), by the Gumbel-max
        trick (argmax_i log omega_i + G_i, G_i = -log(-log U_i)): (batch, n_l)."""
        xp, B = self.xp, self.backend
        n, k = omega.shape
        u = xp.clip(self.rng.uniform((n, k), self.dtype_name), 1e-12, 1.0 - 1e-7)
        choice = xp.argmax(xp.log(omega + 1e-30) - xp.log(-xp.log(u)), axis=1)           # (batch,)
        rows = choice + B.asarray(xp.arange(n, dtype=choice.dtype)) * k
        return xp.take(states, rows, axis=0)

    def _moment_step(self, target):
        """p <- (1 - rho) p + rho target, with p = sigmoid(b), written back as logits (clipped away from 0 and 1)."""
        xp = self.xp
        p = (1.0 - self.prior_rate) * sigmoid(self.prior_params["b"]) + self.prior_rate * target
        p = xp.clip(p, 1e-6, 1.0 - 1e-6)
        self.prior_params["b"][...] = xp.log(p) - xp.log1p(-p)        # in place: optimisers hold this array

    def loss(self, x) -> float:
        """The monitored loss of ``loss_and_grads`` without an update (a fresh sample from Q; nats per example;
        ``algorithm="exact"``: the exact -mean log P(x))."""
        xp = self.xp
        x = self.validate_data(x)
        if self.algorithm == "exact":
            return float(-xp.mean(exact_log_likelihood(self, x)))
        n, k = x.shape[0], self.k
        xk = self._repeat(x, k) if k > 1 else x
        hs, rec_logits = self._recognize(xk, self.rng)
        log_w = xp.reshape(self._log_joint(xk, hs, self._gen_logits(hs)) - self._log_q(hs, rec_logits), (n, k))
        return float(-xp.mean(logsumexp(log_w, axis=1)) + math.log(k))

    # ----------------------------------------------------------------------------------------------
    # Likelihoods, samples, diagnostics
    # ----------------------------------------------------------------------------------------------
    def log_likelihood(self, X, method="exact", k=1000, seed=None, max_rows=8192, chunk=2**14, progress=False):
        """log P(x) per example (batch,).

        ``method="exact"``: log sum_h P(x, h) over all 2^H configurations of the H hidden units, enumerated in
        chunks of ``chunk`` with a running log-sum-exp (H <= MAX_HIDDEN_ENUMERATION).
        ``method="importance"``: logsumexp_i (log P(x, h_i) - log Q(h_i | x)) - log k with h_i ~ Q(.|x), a
        stochastic lower bound that converges to log P(x) as k grows (Burda et al. 2015; Bornschein & Bengio 2015),
        computed in chunks of at most ``max_rows`` sampled rows. ``progress``: a bar over the exact enumeration.
        """
        X = self.validate_data(X, "X")
        if method == "exact":
            return exact_log_likelihood(self, X, check_positive_int(chunk, "chunk"), progress=progress)
        if method == "importance":
            return importance_log_likelihood(self, X, check_positive_int(k, "k"), seed,
                                             check_positive_int(max_rows, "max_rows"))
        raise ValueError(f"method must be 'exact' or 'importance', got {method!r}")

    def sample(self, n, seed=None, mean=True):
        """n dreams from the generative model: P(x = 1 | h_1) (``mean=True``) or binary x, (n, n_visible)."""
        n = check_positive_int(n, "n")
        rng = self.rng if seed is None else self.backend.rng(seed)
        _, hs = self.dream(n, rng)
        probs = sigmoid(self.generative_logits(1, hs[0]))
        return probs if mean else rng.bernoulli(probs)

    def firing_rates(self, X, n_dreams=2000, seed=0) -> list:
        """Per hidden layer, (aggregate recognition rate <Q(h_l = 1 | .)>_data, generative rate from dreams),
        each (n_l,) on the device. For the factorial prior the top layer's generative rate is exact: sigmoid(b)."""
        xp = self.xp
        X = self.validate_data(X, "X")
        rng = self.backend.rng(seed)
        rates, below = [], X
        for l in range(1, len(self.layer_sizes)):
            probs = sigmoid(self.recognition_logits(l, below))
            rates.append(xp.mean(probs, axis=0))
            below = rng.bernoulli(probs)
        _, dreams = self.dream(check_positive_int(n_dreams, "n_dreams"), rng)
        out = [(agg, xp.mean(h, axis=0)) for agg, h in zip(rates, dreams)]
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
    # Checkpoints
    # ----------------------------------------------------------------------------------------------
    def checkpoint_arrays(self) -> dict:
        B = self.backend
        arrays = {f"model/{k}": B.to_numpy(v, copy=True) for k, v in self.params.items()}
        if self.prior_chains is not None:
            arrays["state/prior_chains"] = B.to_numpy(self.prior_chains, copy=True)
        return arrays

    def set_state(self, state: dict) -> None:
        """Restore the RBM prior's persistent sleep-phase chains (from a checkpoint's ``state/`` arrays)."""
        chains = state.get("prior_chains")
        self.prior_chains = None if chains is None else self.backend.asarray(chains, dtype=self.dtype_name)

    def __repr__(self):
        algo = f"RWS k={self.k}" if self.algorithm == "rws" else self.algorithm
        prior = self.prior if self.prior == "rbm" else f"factorial, {self.prior_update} update"
        return f"HelmholtzMachine({'-'.join(map(str, self.layer_sizes))}, {algo}, prior {prior})"
