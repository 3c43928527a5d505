"""The gradient checks behind ``refvae gradcheck``: every model's hand-written derivatives against
float64 central differences, on tiny models, on the active backend (the way to trust a GPU).

Other packages add their models' checks with :func:`register_check`.
"""

from __future__ import annotations

from .backend import get_backend
from .gradcheck import gradcheck
from .vae import GaussianVAE

__all__ = ["CHECKS", "register_check", "run_all"]

CHECKS: dict = {}


def register_check(name: str):
    """Decorator: ``fn(seed) -> GradcheckResult`` is run by ``refvae gradcheck`` under ``name``."""
    def wrap(fn):
        CHECKS[name] = fn
        return fn
    return wrap


def _vae_check(likelihood, activation, seed):
    B = get_backend()
    rng = B.rng((seed, 99), host=True)
    model = GaussianVAE(7, 3, hidden=(6, 5), likelihood=likelihood, activation=activation, seed=seed,
                        dtype="float64")
    x = rng.uniform((5, 7), "float64") if likelihood == "bernoulli" else rng.normal((5, 7), "float64")
    eps = rng.normal((5, 3), "float64")
    _, grads = model.loss_and_grads(x, eps)
    return gradcheck(lambda p: model.loss(x, eps), model.params, grads)


for _lik in ("bernoulli", "gaussian"):
    for _act in ("relu", "tanh"):
        register_check(f"GaussianVAE(likelihood={_lik!r}, activation={_act!r}) loss, fixed eps")(
            lambda seed, _l=_lik, _a=_act: _vae_check(_l, _a, seed))


def run_all(seed: int = 0):
    """Yield ``(name, GradcheckResult)`` for every registered check."""
    _load_optional_packages()
    for name, fn in CHECKS.items():
        yield name, fn(seed)


def _load_optional_packages():
    """Import the sibling packages so that their checks register themselves (if they define any)."""
    import importlib

    for pkg in ("rbm", "wakesleep"):
        try:
            importlib.import_module(pkg)
        except ImportError:
            pass
