r"""The Bernoulli RBM's likelihood gradient, in the order of Hinton's guide: positive phase, negative phase (CD-k,
PCD or exact), the gradient, the penalties.

For a batch $v$ (n, n_visible) and the parameters $W$ (n_visible, n_hidden), $b$ (n_visible,), $c$ (n_hidden,),
the gradient of the mean negative log-likelihood is a difference of two sets of statistics:

.. math::

    \partial(-\operatorname{mean} \log P(v)) / \partial W
        = -(\langle v h^\top \rangle_\text{data} - \langle v h^\top \rangle_\text{model})

    \partial(-\operatorname{mean} \log P(v)) / \partial b
        = -(\langle v \rangle_\text{data} - \langle v \rangle_\text{model})

    \partial(-\operatorname{mean} \log P(v)) / \partial c
        = -(\langle h \rangle_\text{data} - \langle h \rangle_\text{model})

1. Positive phase: $\langle \cdot \rangle_\text{data}$ over the batch, with $h$ replaced by its probabilities
   $P(h = 1 \mid v) = \sigma(c + v W)$ (the statistics are collected from probabilities: Hinton 2010, section 3).
2. Negative phase: $\langle \cdot \rangle_\text{model}$ from Gibbs samples, each sweep $h \to v \to h$ drawing
   $v \sim P(v \mid h) = \sigma(b + h W^\top)$ (the hidden states that drive the chain are sampled) and ending
   with $P(h = 1 \mid v)$:
   - CD-k (Hinton 2002): $k$ sweeps from the data, the first hidden states drawn from the positive phase's
     $P(h \mid v_\text{data})$;
   - PCD (Tieleman 2008): $k$ sweeps of persistent chains ("fantasy particles") from the hidden states the last
     update left them in; every sweep is one of the current model, and its last hidden sample is the chains'
     next state;
   - exact: $\mathbb{E}_\text{model}$ by enumerating the smaller layer (``rbm.partition.model_expectations``),
     which needs $\log Z$.
3. The gradient: the negative statistics minus the positive ones, each averaged over its own rows (a partial
   batch may hold fewer examples than there are chains).
4. Penalties: weight decay (section 10), $+\lambda W$ on $dW$ with $\lambda$ = weight_decay; sparsity
   (section 11), a running average $q \leftarrow 0.95\, q + 0.05 \langle P(h = 1 \mid v) \rangle_\text{batch}$ of
   each hidden unit's activation and sparsity_cost $\cdot (q - \text{target})$ on $dc$, with
   $\langle v \rangle_\text{batch}$ times it on $dW$.

The monitored loss of the Gibbs phases is the free-energy gap
$\operatorname{mean} F(v_\text{data}) - \operatorname{mean} F(v_\text{model})$, whose gradient with the negative
samples held fixed is the gradient above; it reuses both phases' hidden pre-activations.

Every function is pure: parameters and data in, arrays out, random numbers from the generator passed in
(``rng``: a :class:`refvae.backend.Generator`). Sign convention: gradients of the quantity minimised.

References
----------
G. E. Hinton, "Training Products of Experts by Minimizing Contrastive Divergence", Neural Computation 14, 2002.
G. E. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", UTML TR 2010-003.
T. Tieleman, "Training Restricted Boltzmann Machines using Approximations to the Likelihood Gradient", ICML 2008.
"""

from __future__ import annotations

from refvae import numerics
from refvae.numerics import namespace, softplus

from .partition import model_expectations

__all__ = ["FAST_SIGMOID", "SPARSITY_DECAY", "cd_negative_phase", "exact_negative_phase", "free_energy", "free_energy_gap",
           "gibbs_sweeps", "likelihood_gradient", "pcd_negative_phase", "positive_phase", "sparsity_penalty",
           "statistics", "visible_probs", "weight_decay_penalty"]

SPARSITY_DECAY = 0.95   # of the running average q of the hidden units' activations (Hinton 2010, section 11.1)

#: The logistic function of the phases: ``numerics.sigmoid_tanh`` (True), the twin of ``numerics.sigmoid`` (False)
#: equal to it to absolute precision in fewer passes. These probabilities are only drawn from and averaged.
FAST_SIGMOID = True
sigmoid = numerics.sigmoid_tanh if FAST_SIGMOID else numerics.sigmoid


def free_energy(params, v, a=None):
    r"""$F(v) = -b \cdot v - \sum_j \operatorname{softplus}(c_j + (v W)_j)$, per row (batch,); ``a`` $= c + v W$ when
    already known."""
    xp = namespace(v)
    # $a = c + v W$, (batch, n_hidden)
    a = v @ params["W"] + params["c"] if a is None else a
    # $F(v) = -b \cdot v - \sum_j \operatorname{softplus}(a_j)$
    return -(v @ params["b"]) - xp.sum(softplus(a), axis=-1)


# ------------------------------------------------------------------------------------------------------------
# 1. Positive phase
# ------------------------------------------------------------------------------------------------------------
def positive_phase(params, v):
    r"""$(a, p)$: the hidden pre-activation $a = c + v W$ and $P(h = 1 \mid v) = \sigma(a)$ of the data,
    (batch, n_hidden)."""
    # $a = c + v W$
    a = v @ params["W"] + params["c"]
    # $P(h = 1 \mid v) = \sigma(a)$
    return a, sigmoid(a)


def visible_probs(params, h):
    r"""$P(v = 1 \mid h) = \sigma(b + h W^\top)$, (rows, n_visible), for hidden states $h$ (rows, n_hidden)."""
    return sigmoid(h @ params["W"].T + params["b"])


def statistics(v, p):
    r"""$\langle v h^\top \rangle$, $\langle v \rangle$, $\langle h \rangle$ over the rows of $v$ (rows, n_visible),
    $h$ replaced by its probabilities $p$ (rows, n_hidden).

    Returns ``{"W": (n_visible, n_hidden), "b": (n_visible,), "c": (n_hidden,)}``, keyed by the parameter each
    statistic is the gradient of."""
    xp = namespace(v)
    n = v.shape[0]
    # $\langle v h^\top \rangle = v^\top p / n$ (the $1/n$ on the smaller factor)
    vh = v.T @ (p / n)
    # $\langle v \rangle$, $\langle h \rangle$
    return {"W": vh, "b": xp.mean(v, axis=0), "c": xp.mean(p, axis=0)}


# ------------------------------------------------------------------------------------------------------------
# 2. Negative phase: Gibbs sweeps from the data (CD-k) or from the chains (PCD), or exact
# ------------------------------------------------------------------------------------------------------------
def gibbs_sweeps(params, h, k, rng):
    r"""$k$ Gibbs sweeps $h \to v \to h$ from binary hidden states $h$ (rows, n_hidden), $k \ge 1$.

    Returns $(v, a, p)$ of the last sweep: the visible sample (rows, n_visible), its hidden pre-activation
    $a = c + v W$ and $P(h = 1 \mid v) = \sigma(a)$, (rows, n_hidden)."""
    W, c = params["W"], params["c"]
    for sweep in range(k):
        # $v \sim P(v = 1 \mid h) = \sigma(b + h W^\top)$
        v = rng.bernoulli(visible_probs(params, h))
        # $P(h = 1 \mid v) = \sigma(c + v W)$
        a = v @ W + c
        p = sigmoid(a)
        if sweep < k - 1:
            # $h \sim P(h \mid v)$: the states that drive the chain are sampled
            h = rng.bernoulli(p)
    return v, a, p


def cd_negative_phase(params, p_data, k, rng):
    r"""CD-k: $k$ sweeps from the data, $h_0 \sim P(h \mid v_\text{data})$ drawn from the positive phase's
    probabilities ``p_data`` (batch, n_hidden). Returns $(v, a, p)$ of the last sweep, as :func:`gibbs_sweeps`."""
    # $h_0 \sim P(h \mid v_\text{data})$
    h = rng.bernoulli(p_data)
    return gibbs_sweeps(params, h, k, rng)


def pcd_negative_phase(params, chain_h, k, rng):
    r"""PCD: $k$ sweeps of the persistent chains from their hidden states ``chain_h`` (n_chains, n_hidden).

    Returns $(v, a, p, h)$: the last sweep's $(v, a, p)$, as :func:`gibbs_sweeps`, and the chains' next hidden
    states $h \sim P(h \mid v)$, where the next update's sweeps start."""
    v, a, p = gibbs_sweeps(params, chain_h, k, rng)
    # $h \sim P(h \mid v)$: the chains' state for the next update
    return v, a, p, rng.bernoulli(p)


def exact_negative_phase(model):
    r"""$\langle \cdot \rangle_\text{model}$ exactly, by enumerating the smaller layer: (statistics as
    :func:`statistics`, $\log Z$)."""
    # $\mathbb{E}_\text{model}[v h^\top]$, $\mathbb{E}_\text{model}[v]$, $\mathbb{E}_\text{model}[h]$ and $\log Z$
    # (rbm.partition)
    e = model_expectations(model)
    return {"W": e["vh"], "b": e["v"], "c": e["h"]}, e["log_z"]


# ------------------------------------------------------------------------------------------------------------
# 3. The gradient, and the monitored loss
# ------------------------------------------------------------------------------------------------------------
def likelihood_gradient(pos, neg):
    r"""$\partial(-\operatorname{mean} \log P(v)) / \partial(W, b, c)
    = -(\langle \cdot \rangle_\text{data} - \langle \cdot \rangle_\text{model})$, from the statistics of the two
    phases."""
    # $-(\langle \cdot \rangle_\text{data} - \langle \cdot \rangle_\text{model})
    # = \langle \cdot \rangle_\text{model} - \langle \cdot \rangle_\text{data}$ (one pass over each array)
    return {name: neg[name] - pos[name] for name in pos}


def free_energy_gap(params, v, a, v_neg, a_neg):
    r"""$\operatorname{mean} F(v) - \operatorname{mean} F(v_\text{neg})$ from both phases' pre-activations ``a``
    (batch, n_hidden), ``a_neg`` (rows, n_hidden): the loss whose gradient, with the negative samples held fixed,
    is :func:`likelihood_gradient`'s."""
    xp = namespace(v)
    # $\operatorname{mean} F(v_\text{data}) - \operatorname{mean} F(v_\text{model})$
    return xp.mean(free_energy(params, v, a)) - xp.mean(free_energy(params, v_neg, a_neg))


# ------------------------------------------------------------------------------------------------------------
# 4. Penalties
# ------------------------------------------------------------------------------------------------------------
def weight_decay_penalty(params, weight_decay):
    r"""The gradient of $\tfrac{\lambda}{2} \|W\|^2$, $\lambda$ = ``weight_decay`` (Hinton 2010, section 10):
    ``{"W": weight_decay * W}``."""
    # $\partial(\tfrac{\lambda}{2} \|W\|^2) / \partial W = \lambda W$, $\lambda$ = weight_decay
    return {"W": weight_decay * params["W"]}


def sparsity_penalty(q, pos, target, cost, decay=SPARSITY_DECAY):
    """The sparsity target's running average and its gradients (Hinton 2010, section 11).

    ``q`` (n_hidden,) the running average $q$ so far (None before the first batch), ``pos`` the positive phase's
    :func:`statistics`. Returns (q_new, {"W": (n_visible, n_hidden), "c": (n_hidden,)})."""
    xp = namespace(pos["c"])
    # $q \leftarrow \text{decay}\, q + (1 - \text{decay}) \langle P(h = 1 \mid v) \rangle_\text{batch}$
    # ($q_1 = \langle P(h = 1 \mid v) \rangle_\text{batch}$)
    q = pos["c"] if q is None else decay * q + (1.0 - decay) * pos["c"]
    # $dc$: $\text{cost}\, (q - \text{target})$
    pull = cost * (q - target)
    # $dW$: $\langle v \rangle_\text{batch} (\text{cost}\, (q - \text{target}))^\top$
    return q, {"W": xp.reshape(pos["b"], (-1, 1)) * xp.reshape(pull, (1, -1)), "c": pull}
