"""wakesleep: Helmholtz machines trained by wake-sleep, with an adaptive prior over the top layer.

    from wakesleep import HelmholtzMachine
    model = HelmholtzMachine((16, 8, 1), algorithm="wake-sleep", prior_update="moment")
    refvae.fit(model, train, epochs=50, batch_size=20, optimizer=refvae.SGD(0.1))
    model.log_likelihood(test, method="exact")            # small models: all hidden configurations
    model.log_likelihood(test, method="importance", k=5000)

The generative prior over the top layer's binary units is moved towards the average recognition
distribution, P(h_L) <- <Q(h_L|x)>_data, by the wake phase's gradient or by a moment-matching step; or it is
an RBM (``prior="rbm"``, the top of a deep belief net). The equations are in wakesleep/rules.py.
"""

from . import rules
from .model import ALGORITHMS, MAX_HIDDEN_ENUMERATION, PRIOR_UPDATES, PRIORS, HelmholtzMachine

__all__ = ["ALGORITHMS", "MAX_HIDDEN_ENUMERATION", "PRIORS", "PRIOR_UPDATES", "HelmholtzMachine", "rules"]
