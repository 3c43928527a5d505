"""The Gaussian VAE: the model with its hand-written backward pass (model.py), the aggregate-posterior tools
(aggregate.py), its held-out evaluation (evaluation.py), its plots (plots.py), its gradient checks (checks.py)
and its commands (cli.py); ``refvae.app``'s table lists the last three for the program.

    from refvae.vae import GaussianVAE, evaluate_vae, prior_mismatch
"""

from .aggregate import (ACTIVE_THRESHOLD, AggregateKL, PriorMismatch, absorb_prior, aggregate_kl, aggregate_posterior,
                        align_to_prior, prior_mismatch)
from .evaluation import evaluate_vae
from .model import LIKELIHOODS, PRIORS, GaussianVAE, LearnedPrior

__all__ = ["ACTIVE_THRESHOLD", "AggregateKL", "GaussianVAE", "LIKELIHOODS", "LearnedPrior", "PRIORS", "PriorMismatch",
           "absorb_prior", "aggregate_kl", "aggregate_posterior", "align_to_prior", "evaluate_vae", "prior_mismatch"]
