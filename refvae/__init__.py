"""refvae: latent-variable models with hand-written, checked derivatives, on NumPy or CuPy.

Quick tour::

    import refvae
    refvae.set_backend("numpy")                     # or "cupy", or "strict" (tests)
    train, test = refvae.datasets.load("mnist-10k")
    model = refvae.GaussianVAE(784, 20)
    history = refvae.fit(model, train, epochs=10, batch_size=128, optimizer=refvae.Adam(1e-3),
                         binarize="dynamic")
    print(model.log_likelihood(test[:100], k=1000).mean())

Sub-packages ``rbm`` (restricted Boltzmann machines) and ``wakesleep`` (Helmholtz machines) reuse
this core: backend, numerics, layers, optimisers, ``fit``, ``gradcheck``, datasets, checkpoints.
"""

from . import datasets, evaluation, numerics
from .aggregate import PriorMismatch, absorb_prior, aggregate_posterior, align_to_prior, prior_mismatch
from .backend import BACKENDS, Backend, BackendError, get_backend, set_backend, use_backend
from .checkpoint import CheckpointError, load_model as load
from .checks import DataError
from .gradcheck import GradcheckResult, gradcheck
from .layers import MLP, Linear, ReLU, Sigmoid, Softplus, Tanh
from .optim import SGD, Adam
from .train import TrainingError, fit
from .vae import GaussianVAE

__version__ = "0.1.0"

__all__ = [
    "BACKENDS", "Adam", "PriorMismatch", "absorb_prior", "aggregate_posterior", "align_to_prior", "prior_mismatch", "Backend", "BackendError", "CheckpointError", "DataError", "GaussianVAE",
    "GradcheckResult", "Linear", "MLP", "ReLU", "SGD", "Sigmoid", "Softplus", "Tanh", "TrainingError",
    "datasets", "evaluation", "fit", "get_backend", "gradcheck", "load", "numerics", "set_backend", "use_backend",
]
