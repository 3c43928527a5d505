"""The Gaussian VAE's gradient checks for ``refvae gradcheck``: the hand-written backward pass against float64
central differences, on tiny models with fixed noise, for both likelihoods, two activations and the linear
Gaussian VAE's decoder variances (per dimension: factor analysis; shared: probabilistic PCA; fixed)."""

from __future__ import annotations

from ..backend import get_backend
from ..gradcheck import gradcheck
from .model import GaussianVAE


def vae_check(likelihood, activation, seed, hidden=(6, 5), decoder_variance="amortised"):
    """A 7-(6,5)-3 VAE's loss gradient at fixed noise against central differences (float64)."""
    B = get_backend()
    rng = B.rng((seed, 99), host=True)
    model = GaussianVAE(7, 3, hidden=hidden, likelihood=likelihood, activation=activation, seed=seed,
                        dtype="float64", decoder_variance=decoder_variance)
    x = rng.uniform((5, 7), "float64") if likelihood == "bernoulli" else rng.normal((5, 7), "float64")
    eps = rng.normal((5, 3), "float64")
    _, grads = model.loss_and_grads(x, eps)
    return gradcheck(lambda p: model.loss(x, eps), model.params, grads)


#: The gradient checks ``refvae gradcheck`` runs for the VAE (listed in ``refvae.app``): both likelihoods with two
#: activations, and the linear Gaussian VAE's decoder variances.
CHECKS = {
    **{f"GaussianVAE(likelihood={lik!r}, activation={act!r}) loss, fixed eps":
       (lambda seed, _l=lik, _a=act: vae_check(_l, _a, seed))
       for lik in ("bernoulli", "gaussian") for act in ("relu", "tanh")},
    **{f"GaussianVAE(likelihood='gaussian', hidden=(), decoder_variance={var!r}) loss, fixed eps":
       (lambda seed, _v=var: vae_check("gaussian", "relu", seed, hidden=(), decoder_variance=_v))
       for var in ("per-dimension", "shared", 0.5)},
}
