"""The Gaussian VAE: its mathematics as pure functions (elbo.py: the encoder, the decoder, the negative ELBO and its
hand-written backward pass, the importance-weighted likelihood), the model class around them (model.py:
configuration, validation, sampling, checkpoints), the aggregate-posterior tools (aggregate.py), the linear VAE's
closed forms (linear.py), its held-out evaluation (evaluation.py), its plots (plots.py), its gradient checks
(checks.py) and its commands (cli.py); ``refvae.app``'s table lists the last three for the program.

    from refvae.vae import GaussianVAE, aggregate_posterior, prior_mismatch, elbo
"""

from . import elbo
from .aggregate import (ACTIVE_THRESHOLD, AggregateKL, AggregatePosterior, PriorMismatch, absorb_prior, aggregate_kl,
                        aggregate_posterior, align_to_prior, prior_mismatch)
from .evaluation import evaluate_vae
from .model import LIKELIHOODS, PRIORS, GaussianVAE, LearnedPrior

__all__ = ["ACTIVE_THRESHOLD", "AggregateKL", "AggregatePosterior", "GaussianVAE", "LIKELIHOODS", "LearnedPrior",
           "PRIORS", "PriorMismatch", "absorb_prior", "aggregate_kl", "aggregate_posterior", "align_to_prior", "elbo",
           "evaluate_vae", "prior_mismatch"]
