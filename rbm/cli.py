"""``refvae train rbm`` and ``refvae evaluate`` for RBM checkpoints (a plug-in of refvae.cli).

    refvae train rbm --dataset mnist-10k --hidden 500 --cd 1 --pcd --epochs 10 --out runs/rbm
    refvae evaluate runs/rbm/checkpoint.npz --dataset mnist-10k

The test log-likelihood uses the exact log Z when the smaller layer has at most 20 units, else AIS
(Salakhutdinov & Murray 2008) with its ±3 s.d. bounds.
"""

from __future__ import annotations

import time
from pathlib import Path

from refvae import plots
from refvae.backend import get_backend
from refvae.cli import (add_backend_argument, image_shape, load_from_args, register_evaluator,
                        register_train_command, write_json)
from refvae.evaluation import binarize_fixed
from refvae.optim import SGD
from refvae.train import fit

from .model import BernoulliRBM

__all__ = ["add_train_parser", "evaluate_rbm"]

EXACT_LIMIT = 20   # units in the smaller layer up to which the CLI computes log Z exactly


def add_train_parser(train_sub) -> None:
    p = train_sub.add_parser("rbm", help="the Bernoulli RBM (CD-k or PCD)")
    add_backend_argument(p)
    p.add_argument("--dataset", default="mnist-10k")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--cd", type=int, default=1, help="Gibbs steps per update (CD-k / PCD-k)")
    p.add_argument("--pcd", action="store_true", help="persistent chains (PCD) instead of CD")
    p.add_argument("--fixed-prior", action="store_true", help="keep the hidden biases at 0 (no adaptive prior)")
    p.add_argument("--sparsity-target", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=2e-4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--binarize", choices=["dynamic", "static", "none"], default="dynamic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ais-chains", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=14500, help="AIS temperatures (Salakhutdinov & Murray: 14500)")
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--out", default="runs/rbm")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_train_rbm)


def _log_z(model, train, args) -> dict:
    if min(model.n_visible, model.n_hidden) <= EXACT_LIMIT:
        return {"log_z": model.log_partition("exact"), "method": "exact"}
    t0 = time.perf_counter()
    est, lo, hi = model.log_partition("ais", n_chains=args.ais_chains, betas=args.ais_betas, data=train,
                                      seed=args.seed, return_bounds=True)
    return {"log_z": est, "lower": lo, "upper": hi, "method": f"AIS ({args.ais_chains} chains, {args.ais_betas} "
            "temperatures)", "seconds": time.perf_counter() - t0}


def evaluate_rbm(model, test, train, args) -> dict:
    """Mean test log-likelihood (nats) of a binarised test set, with log Z exact or by AIS."""
    B = get_backend()
    z = _log_z(model, train, args)
    test_bin = binarize_fixed(test)
    ll = float(B.xp.mean(model.log_likelihood(test_bin, log_z=z["log_z"])))
    out = {"log_likelihood": ll, "n": int(test.shape[0]), **z}
    if "lower" in z:   # log P(v) = -F(v) - log Z: the bounds on log Z swap into bounds on the likelihood
        out["log_likelihood_bounds"] = [ll - (z["upper"] - z["log_z"]), ll + (z["log_z"] - z["lower"])]
    return out


def _print(metrics):
    bounds = metrics.get("log_likelihood_bounds")
    extra = f" (between {bounds[0]:.2f} and {bounds[1]:.2f} at ±3 s.d. of AIS)" if bounds else ""
    print(f"test log-likelihood {metrics['log_likelihood']:.2f} nats{extra}; log Z = {metrics['log_z']:.3f} "
          f"({metrics['method']})")


def _train_rbm(args) -> int:
    B = get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, _, test, _ = load_from_args(args)
    model = BernoulliRBM(train.shape[1], args.hidden, seed=args.seed, k=args.cd, persistent=args.pcd,
                         adaptive_prior=not args.fixed_prior, sparsity_target=args.sparsity_target,
                         weight_decay=args.weight_decay)
    model.init_visible_bias(train)
    print(f"refvae: training {model} on {args.dataset} ({train.shape[0]} train, {test.shape[0]} test) with the "
          f"{B.name} backend, writing to {out}")
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=SGD(args.lr, momentum=args.momentum), seed=args.seed,
                  binarize=None if args.binarize == "none" else args.binarize, checkpoint=out / "checkpoint.npz",
                  progress=not args.no_progress, resume=args.resume)
    seconds = time.perf_counter() - t0
    metrics = evaluate_rbm(model, test, train, args)
    write_json(out / "metrics.json", {"model": model.config, "dataset": args.dataset, "backend": B.name,
                                      "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                                                   "lr": args.lr, "momentum": args.momentum, "seconds": seconds},
                                      "test": metrics, "history": history})
    shape = image_shape(model.n_visible)
    small = min(model.n_visible, model.n_hidden) <= EXACT_LIMIT
    marginal = model.hidden_marginal("exact" if small else "gibbs", seed=args.seed)
    written = [
        plots.plot_training_curves(history, out / "curves.png", title="RBM training (free-energy gap)"),
        plots.plot_weights(B.to_numpy(model.params["W"]), out / "filters.png", image_shape=shape),
        plots.plot_image_grid(B.to_numpy(model.sample(100, steps=1000, seed=args.seed)), out / "samples.png",
                              image_shape=shape, title="Samples: P(v|h) after 1000 Gibbs sweeps"),
        plots.plot_histogram_pairs(B.to_numpy(model.aggregate_posterior(train)), B.to_numpy(marginal),
                                   out / "hidden_frequencies.png",
                                   labels=("aggregate posterior ⟨P(h|v)⟩ over the data",
                                           "model marginal E_model[h] (" + ("exact" if small else "Gibbs") + ")"),
                                   xlabel="firing probability of a hidden unit",
                                   title="The two sides of the adaptive hidden prior"),
    ]
    _print(metrics)
    print(f"wrote {out / 'checkpoint.npz'}, {out / 'metrics.json'} and {len(written)} plots "
          f"({', '.join(Path(p).name for p in written)})")
    return 0


def _evaluate(model, args) -> int:
    train, _, test, _ = load_from_args(args)
    metrics = evaluate_rbm(model, test, train, args)
    print(f"{model} on {args.dataset} ({metrics['n']} test images)")
    _print(metrics)
    if args.json:
        write_json(Path(args.json), {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "test": metrics})
    return 0


register_train_command(add_train_parser)
register_evaluator("BernoulliRBM", _evaluate)
