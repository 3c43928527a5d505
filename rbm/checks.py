"""The RBM's gradient checks for ``refvae gradcheck``: the free energy's hand-written gradient against float64
central differences, and the exact-negative-phase gradient against the exact negative log-likelihood."""

from refvae.backend import get_backend
from refvae.gradcheck import gradcheck


def _tiny(seed, negative_phase="gibbs"):
    from .model import BernoulliRBM

    B = get_backend()
    model = BernoulliRBM(5, 4, seed=seed, dtype="float64", negative_phase=negative_phase)
    init = B.rng((seed, 7), host=True)
    model.params["W"] = init.normal((5, 4), "float64")
    model.params["b"] = 0.5 * init.normal((5,), "float64")
    model.params["c"] = 0.5 * init.normal((4,), "float64")
    V = B.xp.astype(init.uniform((6, 5), "float64") < 0.5, B.dtype("float64"))
    return model, V


def free_energy_check(seed):
    model, V = _tiny(seed)
    return gradcheck(lambda p: float(model.xp.mean(model.free_energy(V))), model.params, model.free_energy_grads(V))


def exact_nll_check(seed):
    model, V = _tiny(seed, negative_phase="exact")
    _, grads = model.loss_and_grads(V)
    return gradcheck(lambda p: -float(model.xp.mean(model.log_likelihood(V))), model.params, grads)


#: The gradient checks ``refvae gradcheck`` runs for the RBM (listed in ``refvae.app``).
CHECKS = {
    "BernoulliRBM free energy (mean over a batch)": free_energy_check,
    "BernoulliRBM exact negative log-likelihood (negative_phase='exact', by enumeration)": exact_nll_check,
}
