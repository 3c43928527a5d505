"""refvae: latent-variable models with hand-written, checked derivatives, on NumPy or CuPy.

Quick tour::

    import refvae
    refvae.set_backend("numpy")                     # or "cupy", or "strict" (tests)
    train, test = refvae.datasets.load("mnist-10k")
    model = refvae.GaussianVAE(784, 20)
    history = refvae.fit(model, train, epochs=10, batch_size=128, optimizer=refvae.Adam(1e-3),
                         binarize="dynamic")
    print(model.log_likelihood(test[:100], k=1000).mean())

Layout: the modules directly in ``refvae/`` are the core, which knows no model (backend, numerics, layers,
optimisers, ``fit``, checkpoints, input checks, ``gradcheck``, datasets, shared evaluation and plots, the
command-line framework). The models use the core: the Gaussian VAE in ``refvae.vae``, and the sibling packages
``rbm`` (restricted Boltzmann machines) and ``wakesleep`` (Helmholtz machines). ``refvae.app`` is the program
that puts them together, from its one table of the models. This module re-exports the public API.

``import refvae`` loads the core only: the VAE's names (``refvae.GaussianVAE``, ``refvae.align_to_prior``, ...)
import ``refvae.vae`` when first used (PEP 562), so that ``import refvae.optim`` costs no model and no plots.
"""

from . import datasets, evaluation, features, numerics
from ._version import __version__  # noqa: F401  (the package's version)
from .backend import BACKENDS, Backend, BackendError, get_backend, set_backend, use_backend
from .checkpoint import CheckpointError, load_model
from .validation import DataError
from .gradcheck import GradcheckResult, gradcheck
from .layers import MLP, Linear, ReLU, Sigmoid, Softplus, Tanh
from .optim import SGD, Adam
from .train import TrainingError, fit

#: The VAE's public names, re-exported from ``refvae.vae`` on first use.
_VAE_NAMES = ("AggregatePosterior", "GaussianVAE", "PriorMismatch", "absorb_prior", "aggregate_kl", "aggregate_posterior", "align_to_prior",
              "prior_mismatch")


__all__ = [
    "AggregatePosterior", "BACKENDS", "Adam", "Backend", "BackendError", "CheckpointError", "DataError", "GaussianVAE", "GradcheckResult",
    "Linear", "MLP", "PriorMismatch", "ReLU", "SGD", "Sigmoid", "Softplus", "Tanh", "TrainingError",
    "absorb_prior", "aggregate_kl", "aggregate_posterior", "align_to_prior", "datasets", "evaluation", "features", "fit", "get_backend",
    "gradcheck", "load", "numerics", "prior_mismatch", "set_backend", "use_backend",
]


def __getattr__(name):
    """``refvae.GaussianVAE`` and the other VAE names: imported from ``refvae.vae`` when first asked for."""
    if name in _VAE_NAMES:
        from . import vae

        return getattr(vae, name)
    raise AttributeError(f"module 'refvae' has no attribute {name!r}")


def load(path):
    """Rebuild the model saved at ``path``, whatever its kind (VAE, RBM, Helmholtz machine): the kinds are those of
    ``refvae.app``'s table."""
    from .app import install

    install("classes")
    return load_model(path)
