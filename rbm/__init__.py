"""rbm: the Bernoulli restricted Boltzmann machine whose hidden "prior" adapts during training.

Built on refvae's core (backend, optimisers, ``fit``, ``gradcheck``, datasets, checkpoints).
The model itself arrives with its own issue; this package is the place for it.
"""
