"""The Gaussian VAE: the model with its hand-written backward pass (model.py), the aggregate-posterior tools
(aggregate.py), its held-out evaluation (evaluation.py), its plots (plots.py), its gradient checks (checks.py)
and its commands (cli.py, imported by ``refvae.app``).

    from refvae.vae import GaussianVAE, evaluate_vae, prior_mismatch
"""

from . import checks, plots  # noqa: F401  (register the VAE's gradient checks and training-curve series)
from .aggregate import (ACTIVE_THRESHOLD, AggregateKL, PriorMismatch, absorb_prior, aggregate_kl, aggregate_posterior,
                        align_to_prior, prior_mismatch)
from .evaluation import evaluate_vae
from .model import LIKELIHOODS, PRIORS, GaussianVAE, LearnedPrior

__all__ = ["ACTIVE_THRESHOLD", "AggregateKL", "GaussianVAE", "LIKELIHOODS", "LearnedPrior", "PRIORS", "PriorMismatch",
           "absorb_prior", "aggregate_kl", "aggregate_posterior", "align_to_prior", "evaluate_vae", "prior_mismatch"]
