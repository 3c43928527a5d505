"""The Helmholtz machine's gradient checks for ``refvae gradcheck``: each hand-written update, for fixed samples
(and fixed importance weights), against float64 central differences of the quantity it descends."""

import math

from refvae.backend import get_backend
from refvae.gradcheck import gradcheck
from refvae.numerics import logsumexp

from . import rules


def tiny(seed, prior="factorial", layer_sizes=(5, 4, 3), batch=6, k=1, algorithm=None):
    """A float64 machine with O(1) random weights, a binary batch, samples h ~ Q and random positive weights
    summing to 1 per example (as RWS's omega / n): (model, x, hs, weights), rows repeated k times."""
    from .model import HelmholtzMachine

    B = get_backend()
    xp = B.xp
    model = HelmholtzMachine(layer_sizes, seed=seed, dtype="float64", prior=prior,
                             algorithm=algorithm or ("rws" if k > 1 else "wake-sleep"), k=k)
    init = B.rng((seed, 7), host=True)
    for p in model.params.values():
        p[...] = init.normal(tuple(p.shape), "float64")
    x = xp.astype(init.uniform((batch, layer_sizes[0]), "float64") < 0.5, B.dtype("float64"))
    xk = rules.repeat_rows(x, k)
    hs, _ = model.recognize(xk, B.rng((seed, 8)))
    raw = xp.reshape(init.uniform((batch, k), "float64") + 0.1, (batch, k))
    weights = xp.reshape(raw / xp.sum(raw, axis=1, keepdims=True), (batch * k,)) / batch
    return model, xk, hs, weights


def _names(model, prefix):
    return [n for n in model.params if n.startswith(prefix)]


def wake_check(seed):
    model, x, hs, _ = tiny(seed)
    xp = model.xp
    return gradcheck(lambda p: -float(xp.mean(model.log_joint(x, hs))), model.params, model.wake_grads(x, hs),
                     names=_names(model, "gen.") + ["prior.b"])


def sleep_check(seed):
    model, x, hs, _ = tiny(seed)
    xp = model.xp
    return gradcheck(lambda p: -float(xp.mean(model.log_q(hs, x))), model.params, model.sleep_grads(x, hs),
                     names=_names(model, "rec."))


def rws_p_check(seed):
    k, batch = 4, 3
    model, x, hs, _ = tiny(seed, batch=batch, k=k)
    xp = model.xp

    def iw_bound(p):
        log_w = xp.reshape(model.log_joint(x, hs) - model.log_q(hs, x), (batch, k))
        return -float(xp.mean(logsumexp(log_w, axis=1))) + math.log(k)

    log_w = xp.reshape(model.log_joint(x, hs) - model.log_q(hs, x), (batch, k))
    omega = xp.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
    grads = model.wake_grads(x, hs, xp.reshape(omega, (batch * k,)) / batch)
    return gradcheck(iw_bound, model.params, grads, names=_names(model, "gen.") + ["prior.b"])


def rws_q_check(seed):
    model, x, hs, weights = tiny(seed, batch=3, k=4)
    xp = model.xp
    return gradcheck(lambda p: -float(xp.sum(weights * model.log_q(hs, x))), model.params,
                     model.sleep_grads(x, hs, weights), names=_names(model, "rec."))


def rbm_prior_wake_check(seed):
    model, x, hs, weights = tiny(seed, prior="rbm", layer_sizes=(5, 4, 3, 2))
    xp = model.xp
    return gradcheck(lambda p: -float(xp.sum(weights * model.log_joint(x, hs))), model.params,
                     model.wake_grads(x, hs, weights), names=_names(model, "gen."))


def posterior_kl(model, x):
    """Mean over x of KL(P(h | x) || Q(h | x)), by enumerating every hidden configuration (small models)."""
    xp = model.xp
    n, m = x.shape[0], 2 ** sum(model.layer_sizes[1:])
    xs, hs = rules.pair_with_states(x, model.layer_sizes[1:], 0, m)             # every (x, h): (n * m, ...)
    log_joint = xp.reshape(model.log_joint(xs, hs), (n, m))
    log_post = log_joint - logsumexp(log_joint, axis=1, keepdims=True)           # log P(h | x)
    log_q = xp.reshape(model.log_q(hs, xs), (n, m))
    return float(xp.mean(xp.sum(xp.exp(log_post) * (log_post - log_q), axis=1)))


def exact_p_check(seed):
    model, x, _, _ = tiny(seed, algorithm="exact")
    xp = model.xp
    _, grads = model.loss_and_grads(x)
    return gradcheck(lambda p: -float(xp.mean(model.log_likelihood(x))), model.params, grads,
                     names=_names(model, "gen.") + ["prior.b"])


def exact_q_check(seed):
    model, x, _, _ = tiny(seed, algorithm="exact")
    _, grads = model.loss_and_grads(x)
    return gradcheck(lambda p: posterior_kl(model, x), model.params, grads, names=_names(model, "rec."))


#: The gradient checks ``refvae gradcheck`` runs for the Helmholtz machine (listed in ``refvae.app``).
CHECKS = {
    "HelmholtzMachine wake update = d(-mean log P(x, h))/d(generative, prior)": wake_check,
    "HelmholtzMachine sleep update = d(-mean log Q(h | x))/d(recognition)": sleep_check,
    "HelmholtzMachine RWS wake update of P = d(-log mean_i w_i)/d(generative, prior), samples fixed": rws_p_check,
    "HelmholtzMachine RWS wake update of Q = d(-sum omega log Q(h | x))/d(recognition), weights fixed": rws_q_check,
    "HelmholtzMachine (RBM prior) wake update of the sigmoid layers, two hidden layers": rbm_prior_wake_check,
    "HelmholtzMachine exact algorithm, P = d(-mean log P(x))/d(generative, prior), by enumeration": exact_p_check,
    "HelmholtzMachine exact algorithm, Q = d(mean KL(P(h|x) || Q(h|x)))/d(recognition)": exact_q_check,
}
