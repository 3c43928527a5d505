"""Train the Gaussian VAE on the embedded MNIST subset with the library API, then evaluate it.

    python examples/train_vae.py                       # 10 epochs, 784-400-20, k = 1000 (about a minute on a laptop)
    python examples/train_vae.py --quick               # seconds: a smoke test (CI runs this)
    python examples/train_vae.py --backend cupy        # the same code on a GPU

What it shows: the negative ELBO falling per epoch, its two terms (reconstruction and KL), and the
importance-weighted log-likelihood of the test images, which lies above the ELBO (Burda et al. 2015).
"""

import argparse

import refvae
from refvae.cli import use_backend_or_exit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    parser.add_argument("--quick", action="store_true", help="tiny run (seconds)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    use_backend_or_exit(parser, args.backend)
    train, test = refvae.datasets.load("mnist-10k")              # (8000, 784), (2000, 784) in [0, 1]
    epochs, k = args.epochs, 1000
    if args.quick:
        train, test, epochs, k = train[:1000], test[:100], 1, 20

    model = refvae.GaussianVAE(784, 20, hidden=(400,), likelihood="bernoulli", activation="relu", seed=args.seed)
    history = refvae.fit(model, train, epochs=epochs, batch_size=128, optimizer=refvae.Adam(1e-3),
                         binarize="dynamic", seed=args.seed, progress=not args.quick)
    for e, loss, rec, kl in zip(history["epoch"], history["train_loss"], history["train_rec"], history["train_kl"]):
        print(f"epoch {e:2d}: -ELBO {loss:7.2f} = reconstruction {rec:7.2f} + KL {kl:5.2f} nats")

    metrics = refvae.vae.evaluate_vae(model, test, k=k, seed=args.seed)
    print(f"test ELBO {metrics['elbo']:.2f} nats; importance-weighted log-likelihood (k={k}) "
          f"{metrics['log_likelihood']:.2f} nats on {metrics['n']} binarised test images")
    return metrics


if __name__ == "__main__":
    main()
