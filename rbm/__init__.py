"""rbm: the Bernoulli restricted Boltzmann machine whose hidden "prior" adapts during training.

    from rbm import BernoulliRBM
    model = BernoulliRBM(784, 500, k=1, persistent=True)
    model.init_visible_bias(train)
    refvae.fit(model, train, epochs=10, batch_size=100, optimizer=refvae.SGD(0.01, momentum=0.9))
    log_z, lower, upper = model.log_partition("ais", data=train, return_bounds=True)
    print(model.log_likelihood(test, log_z=log_z).mean())

Built on refvae's core (backend, optimisers, ``fit``, ``gradcheck``, checkpoints). See rbm/gradients.py for the
equations of training, rbm/partition.py for the exact and AIS partition functions and rbm/reverse_annealing.py
for RAISE, the conservative log-likelihood that brackets AIS's from below.
"""

from . import gradients
from .model import BernoulliRBM
from .partition import (MAX_ENUMERATION, AISEstimate, AISWarning, ais_betas, ais_estimate, ais_log_partition,
                        ais_log_weights, exact_log_partition, model_expectations, model_expectations_one_pass)
from .reverse_annealing import RAISEEstimate, raise_log_likelihood, raise_log_weights

__all__ = ["AISEstimate", "AISWarning", "BernoulliRBM", "MAX_ENUMERATION", "RAISEEstimate", "ais_betas",
           "ais_estimate", "ais_log_partition", "ais_log_weights", "exact_log_partition", "gradients",
           "model_expectations", "model_expectations_one_pass", "raise_log_likelihood", "raise_log_weights"]
