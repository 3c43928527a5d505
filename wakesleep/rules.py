r"""The Helmholtz machine's mathematics as short pure functions, in the papers' order: the two networks, their
log-probabilities, the wake and sleep updates (Hinton, Dayan, Frey & Neal 1995), the top layer's prior, reweighted
wake-sleep (Bornschein & Bengio 2015) and exact maximum likelihood.

Layers $h_0 = x$ ($n_0$ units), $h_1, \ldots, h_L$, all binary; ``gen`` and ``rec`` are the two parallel lists of
``refvae.layers.Linear`` layers (``gen[l-1]``: $h_l \to$ logits of $h_{l-1}$, W (n_l, n_{l-1}); ``rec[l-1]``:
$h_{l-1} \to$ logits of $h_l$, W (n_{l-1}, n_l)); ``hs = [h_1, ..., h_L]``, one (rows, n_l) array per hidden layer:

.. math::

    P(h_L) = \prod_j \operatorname{Bernoulli}(h_{L,j} \mid \sigma(b_j))
    \qquad \text{(or an RBM over } h_L \text{)}

    P(h_{l-1} \mid h_l) = \operatorname{Bernoulli}(h_{l-1} \mid \sigma(h_l G_l + g_l))
    \qquad \text{generative, top-down}

    Q(h_l \mid h_{l-1}) = \operatorname{Bernoulli}(h_l \mid \sigma(h_{l-1} R_l + r_l))
    \qquad \text{recognition, bottom-up}

Every layer is a logistic regression of its units on the layer that drives it. With logits $a$ and target $t$,

.. math::

    \log \operatorname{Bernoulli}(t \mid \sigma(a)) = \sum_j [t_j a_j - \operatorname{softplus}(a_j)]

    \partial(-\log P)/\partial a = \sigma(a) - t

so every update is the delta rule: (prediction - target) times the driving layer.

- Wake phase: $h \sim Q(h \mid x)$ from the data, the generative layers move along $\partial \log P(x, h)$
  (``wake_step``).
- Sleep phase: $(h, x) \sim P$ dreamt by the generative model, the recognition layers move along
  $\partial \log Q(h \mid x)$ (``sleep_step``). ``wake_sleep_step`` is one update of the 1995 algorithm.
- The top prior (``prior_step``): the wake gradient of the factorial prior's biases, $\sigma(b) - \langle h_L \rangle$,
  vanishes when $P(h_L = 1)$ equals the average recognition probability (the adaptive prior,
  $P(z) \leftarrow \langle Q(z \mid x) \rangle$); the moment-matching step takes it directly and returns the new
  logits as a target; an RBM prior (the top of a deep belief net, Hinton, Osindero & Teh 2006) learns by CD-k on the
  wake states of $h_L$.
- Reweighted wake-sleep (``rws_step``): $k$ samples $h_i \sim Q(\cdot \mid x)$, importance weights
  $w_i = P(x, h_i) / Q(h_i \mid x)$, $\omega_i = w_i / \sum_j w_j$. P's update
  $-\sum_i \omega_i\, \partial \log P(x, h_i)$ is the gradient of the importance-weighted bound
  $-\log (\tfrac{1}{k} \sum_i w_i)$ (``iw_bound``, Burda, Grosse & Salakhutdinov 2016); Q's update is the mean of
  its weighted wake update $-\sum_i \omega_i\, \partial \log Q(h_i \mid x)$ and the sleep update.
- Exact maximum likelihood (``exact_step``, at most 20 hidden units): every configuration $h$ weighted by its exact
  posterior $P(h \mid x)$, the exact gradient of $-\log P(x)$; Q follows the gradient of
  $\mathrm{KL}(P(h \mid x) \,\|\, Q(h \mid x))$.

Sign convention: ``grads`` are $\partial(\text{loss})/\partial(\text{param})$ of the quantity each phase minimises;
optimisers subtract them. Row weights ``w`` (rows,) default to 1/rows (the mean over the rows). Random draws come
from the generator ``rng`` passed in; no function here writes onto a model.

References
----------
G. E. Hinton, P. Dayan, B. J. Frey, R. M. Neal, "The wake-sleep algorithm for unsupervised neural networks",
Science 268, 1995.
P. Dayan, G. E. Hinton, R. M. Neal, R. S. Zemel, "The Helmholtz machine", Neural Computation 7, 1995.
G. E. Hinton, S. Osindero, Y.-W. Teh, "A fast learning algorithm for deep belief nets", Neural Computation 18, 2006.
J. Bornschein, Y. Bengio, "Reweighted wake-sleep", ICLR 2015.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance weighted autoencoders", ICLR 2016.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from refvae.backend import get_backend
from refvae.enumeration import binary_states
from refvae.numerics import bernoulli_log_prob, clipped_logit, logsumexp, namespace, sigmoid, softplus

__all__ = ["EXACT_ROWS", "FAST_STATES", "TopLayer", "configurations_log_joint", "delta_rule", "dream", "exact_log_px",
           "exact_step", "exact_step_fast", "generative_logits", "hidden_sizes", "iw_bound", "log_factorial_prior",
           "log_joint", "log_q", "pair_with_states", "prior_step", "recognition_logits", "recognize", "repeat_rows",
           "resample", "rws_step", "sleep_step", "split_layers", "wake_sleep_step", "wake_step", "weighted_mean"]

EXACT_ROWS = 2**15     # (example, hidden state) rows per block of the textbook exact step
FAST_STATES = 2**14    # hidden states per block of its twin (and of the exact likelihood)


# ----------------------------------------------------------------------------------------------------------------
# The two networks
# ----------------------------------------------------------------------------------------------------------------
def generative_logits(gen, hs):
    r"""Logits $h_l G_l + g_l$ of $P(h_{l-1} = 1 \mid h_l)$ for $l = 1, \ldots, L$, the generative pass on given
    states hs: [(rows, n_0), ..., (rows, n_{L-1})] (those of x first). Shorter lists (gen[:1], hs[:1]) give the
    lower layers."""
    return [layer.forward(h)[0] for layer, h in zip(gen, hs)]


def recognition_logits(rec, x, hs):
    r"""Logits $h_{l-1} R_l + r_l$ of $Q(h_l = 1 \mid h_{l-1})$ for $l = 1, \ldots, L$, the recognition pass on given
    states ($h_0 = x$): [(rows, n_1), ..., (rows, n_L)]. Each layer's rows are its own input's: rec[:1] with hs = []
    gives x's."""
    return [layer.forward(h)[0] for layer, h in zip(rec, [x] + hs[:-1])]


def recognize(rec, x, rng):
    r"""$h \sim Q(h \mid x)$, bottom-up: (hs, rec_logits), hs = [h_1, ..., h_L] (rows, n_l) each, with the logits that
    drew them (equal to recognition_logits(rec, x, hs))."""
    hs, rec_logits, below = [], [], x
    for layer in rec:
        # $h_l \sim Q(h_l \mid h_{l-1}) = \operatorname{Bernoulli}(\sigma(h_{l-1} R_l + r_l))$, (rows, n_l)
        logits = layer.forward(below)[0]
        below = rng.bernoulli(sigmoid(logits))
        rec_logits.append(logits)
        hs.append(below)
    return hs, rec_logits


def dream(gen, h_top, rng):
    r"""Ancestral sampling below the top layer: (x, hs) $\sim P(x, h_1, \ldots, h_{L-1} \mid h_L)$, top-down from h_top
    (rows, n_L); hs = [h_1, ..., h_L] (h_top last)."""
    hs = [h_top]
    for layer in reversed(gen):
        # $h_{l-1} \sim P(h_{l-1} \mid h_l) = \operatorname{Bernoulli}(\sigma(h_l G_l + g_l))$, (rows, n_{l-1})
        hs.insert(0, rng.bernoulli(sigmoid(layer.forward(hs[0])[0])))
    return hs[0], hs[1:]


# ----------------------------------------------------------------------------------------------------------------
# Log-probabilities
# ----------------------------------------------------------------------------------------------------------------
def log_factorial_prior(b, h_top):
    r"""$\log P(h_L) = \sum_j [h_j b_j - \operatorname{softplus}(b_j)]$ of the factorial prior with logits $b$ (n_L,),
    (rows,)."""
    return h_top @ b - namespace(b).sum(softplus(b))


def log_joint(log_p_top, x, hs, gen_logits):
    r"""$\log P(x, h) = \log P(h_L) + \sum_l \log P(h_{l-1} \mid h_l)$, (rows,), from $\log P(h_L)$ (rows,) and the
    generative logits of the states."""
    out = log_p_top
    for target, logits in zip([x] + hs[:-1], gen_logits):
        # $\log P(h_{l-1} \mid h_l) = \sum_j [t_j a_j - \operatorname{softplus}(a_j)]$, (rows,)
        out = out + bernoulli_log_prob(target, logits)
    return out


def log_q(hs, rec_logits):
    r"""$\log Q(h \mid x) = \sum_l \log Q(h_l \mid h_{l-1})$, (rows,), from the recognition logits of the states."""
    out = 0.0
    for h, logits in zip(hs, rec_logits):
        # $\log Q(h_l \mid h_{l-1}) = \sum_j [h_j a_j - \operatorname{softplus}(a_j)]$, (rows,)
        out = out + bernoulli_log_prob(h, logits)
    return out


def iw_bound(log_w):
    r"""The $k$-sample importance-weighted bound $\log (\tfrac{1}{k} \sum_i w_i)$ per example, (n,), from $\log w_i$
    (n, k) with $w_i = P(x, h_i) / Q(h_i \mid x)$, $h_i \sim Q(\cdot \mid x)$: below $\log P(x)$ in expectation, tight
    as $k$ grows ($k = 1$: the ELBO)."""
    # $\log (\tfrac{1}{k} \sum_i w_i) = \operatorname{logsumexp}_i \log w_i - \log k$
    return logsumexp(log_w, axis=1) - math.log(log_w.shape[1])


# ----------------------------------------------------------------------------------------------------------------
# The wake and sleep updates (Hinton, Dayan, Frey & Neal 1995)
# ----------------------------------------------------------------------------------------------------------------
def delta_rule(inputs, logits, targets, w=None):
    r"""(dW, db), the gradients of $-\sum_\text{rows} w \log \operatorname{Bernoulli}(t \mid \sigma(a))$ for logits
    $a = \text{inputs}\, W + b$ and targets $t$: inputs (rows, n_in), logits and targets (rows, n_out)."""
    xp = namespace(logits)
    # $\partial(-\log \operatorname{Bernoulli}(t \mid \sigma(a)))/\partial a = \sigma(a) - t$: prediction minus target,
    # (rows, n_out)
    delta = sigmoid(logits) - targets
    # each row times its weight: $\delta \leftarrow w \odot \delta$, $w = 1/\text{rows}$ unless given
    delta = delta / inputs.shape[0] if w is None else delta * xp.reshape(w, (-1, 1))
    # $dW = \text{inputs}^\top \delta$ (n_in, n_out);  $db = \sum_\text{rows} \delta$ (n_out,)
    return inputs.T @ delta, xp.sum(delta, axis=0)


def wake_step(x, hs, gen_logits, w=None) -> dict:
    r"""The wake update of the generative layers at the states hs $\sim Q(h \mid x)$: the gradients of
    $-\sum_\text{rows} w \log P(x, h)$ with respect to every ``gen.l.W``, ``gen.l.b`` (the prior's: ``prior_step``)."""
    grads = {}
    for l, (h, target, logits) in enumerate(zip(hs, [x] + hs[:-1], gen_logits), start=1):
        # $$dG_l = h_l^\top w\, (\sigma(h_l G_l + g_l) - h_{l-1})$$
        # $$dg_l = \sum_\text{rows} w\, (\sigma(h_l G_l + g_l) - h_{l-1})$$
        grads[f"gen.{l}.W"], grads[f"gen.{l}.b"] = delta_rule(h, logits, target, w)
    return grads


def sleep_step(x, hs, rec_logits, w=None) -> dict:
    r"""The sleep update of the recognition layers at the states (x, hs), dreams $(x, h) \sim P$ in the sleep phase:
    the gradients of $-\sum_\text{rows} w \log Q(h \mid x)$ with respect to every ``rec.l.W``, ``rec.l.b``."""
    grads = {}
    for l, (below, h, logits) in enumerate(zip([x] + hs[:-1], hs, rec_logits), start=1):
        # $$dR_l = h_{l-1}^\top w\, (\sigma(h_{l-1} R_l + r_l) - h_l)$$
        # $$dr_l = \sum_\text{rows} w\, (\sigma(h_{l-1} R_l + r_l) - h_l)$$
        grads[f"rec.{l}.W"], grads[f"rec.{l}.b"] = delta_rule(below, logits, h, w)
    return grads


class TopLayer(NamedTuple):
    """What the prior's update needs from the wake phase's top layer h_L.

    states: one wake state per example, (n, n_L) (RWS: one of the k, drawn by omega), for an RBM prior's CD;
    mean: sum_rows w h_L (n_L,) and total: sum_rows w, for the factorial prior's wake gradient;
    q_mean: the weighted mean recognition probability <Q(h_L = 1 | h_{L-1})> (n_L,), the moment step's target
    (exact ML: the exact posterior's <P(h_L = 1 | x)>)."""

    states: object
    mean: object
    total: object
    q_mean: object


def weighted_mean(a, w=None):
    """sum_rows w_row a_row, (d,), for a (rows, d): the mean over the rows unless row weights w (rows,) are given."""
    xp = namespace(a)
    return xp.mean(a, axis=0) if w is None else xp.sum(xp.reshape(w, (-1, 1)) * a, axis=0)


def wake_sleep_step(gen, rec, log_prior, x, h_top_dream, rng):
    r"""One update of the wake-sleep algorithm on the batch x (n, n_0): (loss, grads, top).

    ``log_prior``: $h_L$ (rows, n_L) $\mapsto \log P(h_L)$ (rows,). ``h_top_dream`` (n, n_L): top states drawn from
    the prior for the sleep phase. The loss is the one-sample negative ELBO $-(\log P(x, h) - \log Q(h \mid x))$, mean
    over the batch (a 0-d array); grads hold ``gen.*`` (wake) and ``rec.*`` (sleep); top feeds ``prior_step``."""
    xp = namespace(x)
    # wake phase: $h \sim Q(h \mid x)$, bottom-up from the data
    hs, rec_logits = recognize(rec, x, rng)
    gen_logits = generative_logits(gen, hs)
    # $\log w = \log P(x, h) - \log Q(h \mid x)$, (n,)
    log_w = log_joint(log_prior(hs[-1]), x, hs, gen_logits) - log_q(hs, rec_logits)
    # P's update: $-\partial \log P(x, h)/\partial\, \text{gen}$ at the wake states
    grads = wake_step(x, hs, gen_logits)
    # sleep phase: $(x, h) \sim P$, top-down from the prior's states
    x_dream, h_dream = dream(gen, h_top_dream, rng)
    # Q's update: $-\partial \log Q(h \mid x)/\partial\, \text{rec}$ at the dreams
    grads.update(sleep_step(x_dream, h_dream, recognition_logits(rec, x_dream, h_dream)))
    # for the prior: the wake states of $h_L$, their mean, and the mean recognition probability
    # $\langle Q(h_L = 1 \mid h_{L-1}) \rangle$
    top = TopLayer(hs[-1], weighted_mean(hs[-1]), 1.0, weighted_mean(sigmoid(rec_logits[-1])))
    # the one-sample negative ELBO, $-\operatorname{mean} (\log P(x, h) - \log Q(h \mid x))$
    return -xp.mean(log_w), grads, top


def prior_step(prior_params, top, update="gradient", rate=0.05, rbm=None, rng=None):
    r"""The top prior's update from the wake phase's top layer ``top`` (a :class:`TopLayer`): (grads, targets).

    - ``rbm`` given (prior="rbm"): the RBM's CD-k gradient on the wake states, drawing its Gibbs sweeps from rng;
    - ``update="gradient"``: the factorial prior's wake gradient,
      $\partial(-\sum_\text{rows} w \log P(h_L))/\partial b$;
    - ``update="moment"``: a zero gradient, and in ``targets`` the logits after the moment-matching step
      $p \leftarrow (1 - \rho) p + \rho \langle Q(h_L = 1 \mid h_{L-1}) \rangle$ ($\rho$ = ``rate``), which the trainer
      writes into
      ``params["prior.b"]`` after the optimiser's step.
    """
    if rbm is not None:
        # CD-k on the wake states of $h_L$: the RBM's estimate of
        # $\partial(-\operatorname{mean} \log P(h_L))/\partial \theta$, $\theta$ = (prior.W, prior.b, prior.c)
        _, rbm_grads = rbm.loss_and_grads(top.states, rng=rng)
        return {f"prior.{name}": g for name, g in rbm_grads.items()}, {}
    b = prior_params["b"]                                                  # logits of P(h_L = 1), (n_L,)
    xp = namespace(b)
    if update == "moment":
        # $p \leftarrow (1 - \rho) p + \rho \langle Q(h_L = 1 \mid h_{L-1}) \rangle$, $p = \sigma(b)$, kept inside
        # $(0, 1)$
        p = (1.0 - rate) * sigmoid(b) + rate * top.q_mean
        # $b \leftarrow \log p - \log(1 - p)$ ($p$ clipped to $[10^{-6}, 1 - 10^{-6}]$): a target for the trainer, not a
        # gradient
        return {"prior.b": xp.zeros_like(b)}, {"prior.b": clipped_logit(p, 1e-6)}
    # $$\partial(-\sum_\text{rows} w \log P(h_L))/\partial b = \sum_\text{rows} w\, (\sigma(b) - h_L)
    #   = \sigma(b) \sum_\text{rows} w - \sum_\text{rows} w\, h_L$$
    return {"prior.b": sigmoid(b) * top.total - top.mean}, {}


# ----------------------------------------------------------------------------------------------------------------
# Reweighted wake-sleep (Bornschein & Bengio 2015)
# ----------------------------------------------------------------------------------------------------------------
def rws_step(gen, rec, log_prior, x, h_top_dream, k, rng):
    r"""One update of reweighted wake-sleep with $k$ samples per example on the batch x (n, n_0): (loss, grads, top).

    Arguments as :func:`wake_sleep_step`. The loss is the negative bound $-\log (\tfrac{1}{k} \sum_i w_i)$, mean over
    the batch; grads hold P's $\omega$-weighted wake update and Q's, averaged with the sleep update."""
    xp = namespace(x)
    n = x.shape[0]
    xs = repeat_rows(x, k)                                                 # (n k, n_0): rows i k .. i k + k - 1 hold x_i
    # wake phase: $k$ samples $h_i \sim Q(h \mid x)$ per example
    hs, rec_logits = recognize(rec, xs, rng)
    gen_logits = generative_logits(gen, hs)
    # $\log w_i = \log P(x, h_i) - \log Q(h_i \mid x)$, (n, k)
    log_w = xp.reshape(log_joint(log_prior(hs[-1]), xs, hs, gen_logits) - log_q(hs, rec_logits), (n, k))
    # the bound: $\log (\tfrac{1}{k} \sum_i w_i)$, (n,)
    bound = iw_bound(log_w)
    # $\omega_i = w_i / \sum_j w_j = \exp(\log w_i - \log \sum_j w_j)$, (n, k)
    omega = xp.exp(log_w - xp.reshape(bound + math.log(k), (n, 1)))
    w = xp.reshape(omega, (n * k,)) / n                                    # row weights omega_i / n, (n k,)
    # P's update: $-\sum_i \omega_i\, \partial \log P(x, h_i)$, the gradient of -bound (the samples held fixed)
    grads = wake_step(xs, hs, gen_logits, w)
    # Q's wake update: $-\sum_i \omega_i\, \partial \log Q(h_i \mid x)$
    q_wake = sleep_step(xs, hs, rec_logits, w)
    # sleep phase: $(x, h) \sim P$ from the prior's states, and Q's sleep update
    x_dream, h_dream = dream(gen, h_top_dream, rng)
    sleep = sleep_step(x_dream, h_dream, recognition_logits(rec, x_dream, h_dream))
    # Q's update: the mean of its wake and sleep updates
    grads.update({name: 0.5 * (q_wake[name] + sleep[name]) for name in sleep})
    # for the prior: one wake state of $h_L$ per example drawn by $\omega$, the $\omega$-weighted means of $h_L$ and of
    # $Q(h_L = 1 \mid h_{L-1})$
    top = TopLayer(resample(hs[-1], omega, rng), weighted_mean(hs[-1], w), xp.sum(w),
                   weighted_mean(sigmoid(rec_logits[-1]), w))
    # the negative bound, $-\operatorname{mean} \log (\tfrac{1}{k} \sum_i w_i)$
    return -xp.mean(bound), grads, top


def resample(states, omega, rng):
    r"""One row per example drawn from its $k$ rows of ``states`` (n k, d) with probabilities $\omega$ (n, k), by the
    Gumbel-max trick: (n, d)."""
    xp = namespace(omega)
    n, k = omega.shape
    # $U_i \sim \operatorname{Uniform}(0, 1)$, (n, k), kept away from 0 and 1
    u = xp.clip(rng.uniform((n, k), omega.dtype), 1e-12, 1.0 - 1e-7)
    # $i^* = \operatorname{argmax}_i (\log \omega_i + G_i)$,  $G_i = -\log(-\log U_i)$ Gumbel noise, (n,)
    choice = xp.argmax(xp.log(omega + 1e-30) - xp.log(-xp.log(u)), axis=1)
    rows = choice + get_backend().asarray(xp.arange(n, dtype=choice.dtype)) * k       # row of example i: i k + i*
    return xp.take(states, rows, axis=0)


# ----------------------------------------------------------------------------------------------------------------
# Exact maximum likelihood (small models: every hidden configuration)
# ----------------------------------------------------------------------------------------------------------------
def exact_step(gen, rec, log_prior, x, fast=True, states_per_block=None):
    r"""One update of exact maximum likelihood on the batch x (n, n_0): (loss, grads, top).

    Every hidden configuration $h$, weighted by its exact posterior $P(h \mid x) = P(x, h) / P(x)$: the wake update
    with these weights, $-\sum_x \sum_h P(h \mid x)/n\; \partial \log P(x, h)$, is the exact gradient of
    $-\operatorname{mean} \log P(x)$ (the loss); the same weights on $-\partial \log Q(h \mid x)$ give the gradient of
    $\operatorname{mean} \mathrm{KL}(P(h \mid x) \,\|\, Q(h \mid x))$, so Q follows the posterior.
    Written here as the wake and sleep updates on every (x, h) row, in blocks of states; ``fast`` takes the same
    sums in a cheaper order (:func:`exact_step_fast`, below; tested equal to 1e-12 in float64).
    """
    if fast:                                                               # the twin, directly below
        return exact_step_fast(gen, rec, log_prior, x, states_per_block or FAST_STATES)
    xp = namespace(x)
    n, sizes = x.shape[0], hidden_sizes(gen)
    n_states = 2 ** sum(sizes)
    states_per_block = states_per_block or max(1, EXACT_ROWS // n)
    # $\log P(x) = \log \sum_h P(x, h)$, (n,): the posterior's normaliser
    log_px = exact_log_px(gen, log_prior, x)
    grads, mean, total = {}, 0.0, 0.0
    for start in range(0, n_states, states_per_block):
        xs, hs = pair_with_states(x, sizes, start, min(start + states_per_block, n_states))   # row i m + s: (x_i, h_s)
        m = xs.shape[0] // n
        gen_logits = generative_logits(gen, hs)
        log_px_rows = xp.reshape(xp.broadcast_to(xp.reshape(log_px, (n, 1)), (n, m)), (n * m,))
        # $w = P(h_s \mid x_i) / n = \exp(\log P(x_i, h_s) - \log P(x_i)) / n$, (n m,)
        w = xp.exp(log_joint(log_prior(hs[-1]), xs, hs, gen_logits) - log_px_rows) / n
        # P: $-\sum_x \sum_h w\, \partial \log P(x, h)$, the gradient of $-\operatorname{mean} \log P(x)$
        block = wake_step(xs, hs, gen_logits, w)
        # Q: $-\sum_x \sum_h w\, \partial \log Q(h \mid x)$, the gradient of
        # $\operatorname{mean} \mathrm{KL}(P(h \mid x) \,\|\, Q(h \mid x))$
        block.update(sleep_step(xs, hs, recognition_logits(rec, xs, hs), w))
        grads = {name: grads.get(name, 0.0) + g for name, g in block.items()}
        mean, total = mean + weighted_mean(hs[-1], w), total + xp.sum(w)
    return -xp.mean(log_px), grads, TopLayer(None, mean, total, mean)


def exact_step_fast(gen, rec, log_prior, x, states_per_block=FAST_STATES):
    r""":func:`exact_step`'s twin, equal to it: the generative logits depend on $h$ only and the first recognition
    layer's on $x$ only, so each is computed once and the sums over the rows that share a factor are taken first.
    With $w[x, h] = P(h \mid x) / n$ (n, m), $s[h] = \sum_x w[x, h]$ (m,) ($s \odot$ scales each state's row), the
    states $H_l$ (m, n_l) and $A_l = H_l G_l + g_l$:

    - generative layer 1: $D = s \odot \sigma(A_1) - w^\top X$, $dG_1 = H_1^\top D$, $dg_1 = \sum_h D$;
    - generative layer $l \ge 2$: $D = s \odot (\sigma(A_l) - H_{l-1})$, $dG_l = H_l^\top D$, $dg_l = \sum_h D$;
    - recognition layer 1: $D = \sigma(X R_1 + r_1) / n - w H_1$, $dR_1 = X^\top D$, $dr_1 = \sum_x D$;
    - recognition layer $l \ge 2$: $D = s \odot (\sigma(H_{l-1} R_l + r_l) - H_l)$, $dR_l = H_{l-1}^\top D$.
    """
    xp = namespace(x)
    n = x.shape[0]
    n_states = 2 ** sum(hidden_sizes(gen))
    starts = range(0, n_states, states_per_block)
    first = configurations_log_joint(gen, log_prior, x, 0, min(states_per_block, n_states))
    # pass 1: $\log P(x)$, (n,), the first block's $\log P(x, h)$ reused
    log_px = exact_log_px(gen, log_prior, x, states_per_block, first_block=first[2])
    # $\sigma(X R_1 + r_1) / n$, (n, n_1): the prediction part of recognition layer 1, the same in every block
    q_1 = sigmoid(recognition_logits(rec[:1], x, [])[0]) / n
    grads, mean, total = {}, 0.0, 0.0
    for start in starts:                                                   # pass 2: the weighted sums
        stop = min(start + states_per_block, n_states)
        hs, gen_logits, log_joint_xh = first if start == 0 else configurations_log_joint(gen, log_prior, x, start, stop)
        w = xp.exp(log_joint_xh - xp.reshape(log_px, (-1, 1))) / n        # P(h | x) / n, (n, m)
        s = xp.sum(w, axis=0)                                              # (m,)
        s_col = xp.reshape(s, (-1, 1))
        rec_logits = recognition_logits(rec[1:], hs[0], hs[1:])           # layers 2..L on the states
        d = s_col * sigmoid(gen_logits[0]) - w.T @ x                       # generative layer 1, (m, n_0)
        block = {"gen.1.W": hs[0].T @ d, "gen.1.b": xp.sum(d, axis=0)}
        for l in range(2, len(gen) + 1):
            d = s_col * (sigmoid(gen_logits[l - 1]) - hs[l - 2])           # generative layer l, (m, n_{l-1})
            block[f"gen.{l}.W"], block[f"gen.{l}.b"] = hs[l - 1].T @ d, xp.sum(d, axis=0)
        d = -(w @ hs[0])                                                   # recognition layer 1, the target part
        block["rec.1.W"], block["rec.1.b"] = x.T @ d, xp.sum(d, axis=0)
        for l in range(2, len(gen) + 1):
            d = s_col * (sigmoid(rec_logits[l - 2]) - hs[l - 1])           # recognition layer l, (m, n_l)
            block[f"rec.{l}.W"], block[f"rec.{l}.b"] = hs[l - 2].T @ d, xp.sum(d, axis=0)
        grads = {name: grads.get(name, 0.0) + g for name, g in block.items()}
        mean, total = mean + s @ hs[-1], total + xp.sum(s)                 # sum_h s_h h_L, sum_h s_h
    grads["rec.1.W"] = grads["rec.1.W"] + x.T @ q_1                        # the prediction part, once
    grads["rec.1.b"] = grads["rec.1.b"] + xp.sum(q_1, axis=0)
    return -xp.mean(log_px), grads, TopLayer(None, mean, total, mean)


# ----------------------------------------------------------------------------------------------------------------
# Enumerating the hidden configurations
# ----------------------------------------------------------------------------------------------------------------
def hidden_sizes(gen):
    """(n_1, ..., n_L), the hidden layers' widths (the inputs of the generative layers)."""
    return tuple(layer.in_dim for layer in gen)


def split_layers(states, sizes):
    """The columns of hidden configurations ``states`` (m, sum(sizes)) split by layer: [h_1 (m, n_1), ...]."""
    hs, offset = [], 0
    for n_l in sizes:
        hs.append(states[:, offset:offset + n_l])
        offset += n_l
    return hs


def repeat_rows(x, k):
    """Each row of x (n, d) repeated k times in a row: (n k, d), rows i k .. i k + k - 1 copies of x_i."""
    xp = namespace(x)
    n, d = x.shape
    return xp.reshape(xp.broadcast_to(xp.expand_dims(x, axis=1), (n, k, d)), (n * k, d))


def pair_with_states(x, sizes, start, stop):
    """Every row of x (n, n_0) paired with every hidden configuration with codes start..stop-1 (m of them):
    (xs (n m, n_0), hs [h_1 (n m, n_1), ...]), row i m + s holding (x_i, state s)."""
    xp = namespace(x)
    H = sum(sizes)
    states = binary_states(start, stop, H, x.dtype)                        # (m, H)
    n, m = x.shape[0], states.shape[0]
    tiled = xp.reshape(xp.broadcast_to(xp.expand_dims(states, axis=0), (n, m, H)), (n * m, H))
    return repeat_rows(x, m), split_layers(tiled, sizes)


def configurations_log_joint(gen, log_prior, x, start, stop):
    """(hs, gen_logits, log_joint) for the hidden configurations with codes start..stop-1 (m of them): the states
    split by layer, their generative logits (those of x first, (m, n_0)), and log P(x, h) for every row of x and
    every configuration, (n, m)."""
    xp = namespace(x)
    hs = split_layers(binary_states(start, stop, sum(hidden_sizes(gen)), x.dtype), hidden_sizes(gen))
    gen_logits = generative_logits(gen, hs)
    # log P(h_1, ..., h_L) = log P(h_L) + sum_{l >= 2} log P(h_{l-1} | h_l), (m,)
    log_p_h = log_joint(log_prior(hs[-1]), hs[0], hs[1:], gen_logits[1:])
    a = gen_logits[0]                                                      # logits of x, (m, n_0)
    # log P(x | h_1) = x.a - sum_i softplus(a_i), for every x and every h at once: (n, m)
    return hs, gen_logits, x @ a.T - xp.reshape(xp.sum(softplus(a), axis=1) - log_p_h, (1, -1))


def exact_log_px(gen, log_prior, x, states_per_block=FAST_STATES, progress=False, first_block=None):
    """log P(x) = log sum_h P(x, h) per example, (n,), over all 2^H configurations of the H hidden units, in blocks
    of states with a running log-sum-exp. ``progress``: a bar over the blocks. ``first_block``: the first block's
    log P(x, h) (n, m), if the caller has it already."""
    xp = namespace(x)
    H = sum(hidden_sizes(gen))
    starts = range(0, 2 ** H, states_per_block)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc=f"exact log P(x) (2^{H} states)", unit="chunk", leave=False, mininterval=0.5)
    log_px = None
    for start in starts:
        stop = min(start + states_per_block, 2 ** H)
        reuse = start == 0 and first_block is not None
        log_joint_xh = first_block if reuse else configurations_log_joint(gen, log_prior, x, start, stop)[2]
        # log P(x) <- log (P(x) + sum_h P(x, h)) over the block's states
        part = logsumexp(log_joint_xh, axis=1)
        log_px = part if log_px is None else xp.logaddexp(log_px, part)
    return log_px
