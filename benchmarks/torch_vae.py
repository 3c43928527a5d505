"""An independent PyTorch implementation of refvae's Gaussian VAE, for comparing results and speed.

Same model and schedule as refvae's default run: 784-400-20 with ReLU, a Bernoulli decoder, one
reparameterised sample, the batch mean of the negative ELBO in nats, Adam 1e-3, batch 128 with the
last partial batch kept, dynamic binarisation, PyTorch's default nn.Linear initialisation (the same
distribution refvae uses), float32. It shares no code with refvae: it reads the IDX files itself.

    python benchmarks/torch_vae.py --epochs 10 --seed 0 --json out.json     (needs: pip install 'refvae[bench]')

The test negative ELBO is measured on one fixed binarisation of the last 2,000 images,
``numpy.random.default_rng(1234).random(test.shape) < test`` (the recipe of refvae.evaluation), as the
mean single-sample -ELBO averaged over 10 noise draws.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

DATA = Path(__file__).resolve().parents[1] / "refvae" / "data"


def load_mnist_10k():
    """(train (8000, 784), test (2000, 784)) float32 in [0, 1], read from the IDX files directly."""
    raw = gzip.open(DATA / "t10k-images-idx3-ubyte.gz").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    return images[:8000], images[8000:]


class TorchVAE(nn.Module):
    def __init__(self, x_dim=784, hidden=400, z_dim=20):
        super().__init__()
        self.enc = nn.Linear(x_dim, hidden)
        self.mu = nn.Linear(hidden, z_dim)
        self.logvar = nn.Linear(hidden, z_dim)
        self.dec = nn.Linear(z_dim, hidden)
        self.out = nn.Linear(hidden, x_dim)

    def negative_elbo(self, x):
        """Per-example -ELBO (batch,), one reparameterised sample."""
        h = F.relu(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.out(F.relu(self.dec(z)))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return rec + kl


def train_epoch(model, opt, X, batch_size, generator):
    """One epoch of shuffled minibatches with dynamic binarisation; returns the mean training loss."""
    n = X.shape[0]
    order = torch.randperm(n, generator=generator, device=X.device)
    total = torch.zeros((), device=X.device)
    for i in range(0, n, batch_size):
        batch = X[order[i:i + batch_size]]
        batch = (torch.rand(batch.shape, generator=generator, device=X.device) < batch).float()
        loss = model.negative_elbo(batch).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * batch.shape[0]
    return float(total) / n


@torch.no_grad()
def test_negative_elbo(model, test, draws=10):
    test_bin = (np.random.default_rng(1234).random(test.shape) < test).astype(np.float32)
    xb = torch.from_numpy(test_bin)
    return float(np.mean([model.negative_elbo(xb).mean().item() for _ in range(draws)]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train, test = load_mnist_10k()
    X = torch.from_numpy(train)
    model = TorchVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        loss = train_epoch(model, opt, X, args.batch_size, gen)
        history.append({"epoch": epoch + 1, "train_loss": loss, "seconds": time.perf_counter() - t0})
        print(f"epoch {epoch + 1}: train -ELBO {loss:.2f} ({history[-1]['seconds']:.2f} s)")
    result = {"seed": args.seed, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "test_negative_elbo": test_negative_elbo(model, test), "history": history}
    print(f"test -ELBO {result['test_negative_elbo']:.2f} nats")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
