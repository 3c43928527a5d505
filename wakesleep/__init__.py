"""wakesleep: Helmholtz machines trained by wake-sleep, with an adaptive prior over binary latents.

Built on refvae's core (backend, optimisers, ``fit``, ``gradcheck``, datasets, checkpoints) and on
``rbm`` for an RBM top prior. The model itself arrives with its own issue; this package is the place for it.
"""
