"""The VAE learns what an independent implementation learns: 10 epochs of 784-400-20 on mnist-10k give a
test negative ELBO within 2 nats of the PyTorch implementation's (recorded in benchmarks/results by
benchmarks/vae_vs_torch.py), and the importance-weighted NLL lies below the negative ELBO."""

import json
from pathlib import Path

import pytest

import refvae

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "vae_vs_torch.json"


@pytest.mark.long
@pytest.mark.slow
def test_ten_epochs_match_the_pytorch_reference(numpy_backend):
    reference = json.loads(REFERENCE.read_text())
    torch_mean = reference["torch_mean"]
    train, test = refvae.datasets.load("mnist-10k")
    model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
    refvae.fit(model, train, epochs=10, batch_size=128, optimizer=refvae.Adam(1e-3), binarize="dynamic", seed=0,
               progress=False)
    metrics = refvae.vae.evaluate_vae(model, test[:500], k=200, seed=0)
    full = refvae.vae.evaluate_vae(model, test, k=1, seed=0)  # the -ELBO on all 2,000 test images
    assert abs(-full["elbo"] - torch_mean) <= 2.0, (full["elbo"], torch_mean)
    assert -metrics["log_likelihood"] < -metrics["elbo"]
