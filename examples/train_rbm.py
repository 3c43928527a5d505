"""Train a Bernoulli RBM on the embedded MNIST subset with the library API; report the test log-likelihood.

    python examples/train_rbm.py                    # 784-500, PCD-1, 10 epochs; log Z by AIS (a few minutes)
    python examples/train_rbm.py --hidden 20        # small enough for the exact log Z
    python examples/train_rbm.py --quick            # seconds (CI)

Shows both sides of the adaptive hidden prior after training: the aggregate posterior <P(h|v)> over the
data and the model's own marginal E_model[h] (exact for small models, Gibbs chains otherwise).
"""

import argparse
import warnings

import refvae
from refvae.cli import use_backend_or_exit
from rbm import AISWarning, BernoulliRBM
from refvae.evaluation import binarize_fixed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--cd", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    use_backend_or_exit(p, args.backend)
    B = refvae.get_backend()
    train, test = refvae.datasets.load("mnist-10k")
    hidden, epochs, betas, chains = args.hidden, args.epochs, 14500, 100
    if args.quick:
        train, test, hidden, epochs, betas, chains = train[:500], test[:100], 12, 2, 100, 20

    model = BernoulliRBM(784, hidden, k=args.cd, persistent=True, seed=args.seed, weight_decay=2e-4)
    model.init_visible_bias(train)                                  # b = log-odds of the pixel means
    history = refvae.fit(model, train, epochs=epochs, batch_size=100, optimizer=refvae.SGD(0.01, momentum=0.9),
                         binarize="dynamic", seed=args.seed, progress=not args.quick)
    for e, gap, rec in zip(history["epoch"], history["train_loss"], history["reconstruction_error"]):
        print(f"epoch {e:2d}: free-energy gap {gap:8.3f}, reconstruction error {rec:6.2f}")

    exact = min(784, hidden) <= 20
    if exact:
        log_z, how = model.log_partition("exact"), "exact"
    else:
        with warnings.catch_warnings():                             # reported below, in the estimate's own words
            warnings.simplefilter("ignore", AISWarning)
            est = model.log_partition("ais", n_chains=chains, betas=betas, data=train, return_bounds=True)
        log_z = est.log_z
        how = f"AIS, {chains} chains, {betas} temperatures: {est.describe()}"
    ll = float(B.xp.mean(model.log_likelihood(binarize_fixed(test), log_z=log_z)))
    print(f"test log-likelihood {ll:.2f} nats (log Z = {log_z:.2f}, {how})")
    agg = B.to_numpy(model.aggregate_posterior(train))
    marginal = B.to_numpy(model.hidden_marginal("exact" if exact else "gibbs"))
    print(f"hidden firing rates: aggregate posterior mean {agg.mean():.3f}, model marginal mean {marginal.mean():.3f}, "
          f"largest gap {abs(agg - marginal).max():.3f}")
    return ll


if __name__ == "__main__":
    main()
