"""The Gaussian VAE's commands: ``refvae train vae`` (train, evaluate, write checkpoint, metrics, report and
plots), its ``refvae evaluate`` (test ELBO and importance-weighted log-likelihood) and ``refvae diagnose`` (the
aggregate posterior against the prior: report and plots)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backend import get_backend
from ..checkpoint import load_checkpoint, load_model
from ..cli import (add_backend_argument, image_shape, load_from_args, parse_hidden, register_command,
                   register_evaluator, register_train_command, write_json)
from ..optim import SGD, Adam
from ..plots import plot_image_grid, plot_reconstructions, plot_training_curves
from ..train import fit
from . import plots as vae_plots
from .aggregate import absorb_prior, prior_mismatch
from .evaluation import evaluate_vae
from .model import LIKELIHOODS, GaussianVAE

__all__ = ["add_diagnose_parser", "add_train_parser"]


def add_train_parser(train_sub) -> None:
    """``refvae train vae``."""
    vae = train_sub.add_parser("vae", help="the Gaussian VAE")
    add_backend_argument(vae)
    vae.add_argument("--dataset", default="mnist-10k", help="mnist-10k (embedded), mnist, or bars")
    vae.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (dataset mnist)")
    vae.add_argument("--epochs", type=int, default=10)
    vae.add_argument("--batch-size", type=int, default=128)
    vae.add_argument("--z-dim", type=int, default=20)
    vae.add_argument("--hidden", type=parse_hidden, default=(400,), help="hidden widths, e.g. 400 or 500,200")
    vae.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    vae.add_argument("--activation", choices=["relu", "tanh", "softplus", "sigmoid"], default="relu")
    vae.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    vae.add_argument("--lr", type=float, default=1e-3)
    vae.add_argument("--momentum", type=float, default=0.9, help="for --optimizer sgd")
    vae.add_argument("--binarize", choices=["dynamic", "static", "none"], default="dynamic")
    vae.add_argument("--seed", type=int, default=0)
    vae.add_argument("--iw-samples", type=int, default=1000,
                     help="importance samples per test image for the log-likelihood (Burda et al. use 5000)")
    vae.add_argument("--train-size", type=int, default=None, help="use only the first N training images")
    vae.add_argument("--test-size", type=int, default=None, help="use only the first N test images")
    vae.add_argument("--out", default="runs/vae", help="output directory")
    vae.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    vae.add_argument("--no-progress", action="store_true", help="no progress bars")
    vae.set_defaults(run=_train_vae)


def _train_vae(args) -> int:
    B = get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, y_train, test, y_test = load_from_args(args)
    model = GaussianVAE(train.shape[1], args.z_dim, hidden=args.hidden, likelihood=args.likelihood,
                        activation=args.activation, seed=args.seed)
    optimizer = Adam(args.lr) if args.optimizer == "adam" else SGD(args.lr, momentum=args.momentum)
    binarize = None if args.binarize == "none" else args.binarize
    if args.likelihood == "gaussian" and binarize is not None:
        raise ValueError("--binarize needs the Bernoulli likelihood: pass --binarize none with --likelihood gaussian")
    print(f"refvae: training {model} on {args.dataset} ({train.shape[0]} train, {test.shape[0]} test images) "
          f"with the {B.name} backend, writing to {out}")
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer, seed=args.seed,
                  binarize=binarize, X_val=test, checkpoint=out / "checkpoint.npz", progress=not args.no_progress,
                  resume=args.resume)
    train_seconds = time.perf_counter() - t0
    print(f"evaluating on {test.shape[0]} test images (importance sampling with k={args.iw_samples}) ...")
    metrics = evaluate_vae(model, test, k=args.iw_samples, seed=args.seed, progress=not args.no_progress)
    report = {"model": model.config, "dataset": args.dataset, "backend": B.name,
              "training": {"epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
                           "lr": args.lr, "binarize": binarize, "seed": args.seed, "seconds": train_seconds},
              "test": metrics, "history": history}
    write_json(out / "metrics.json", report)
    plots = _vae_plots(model, history, test, y_test, out, args.dataset)
    _write_report(out, report, plots)
    _print_metrics(metrics)
    print(f"wrote {out / 'checkpoint.npz'}, {out / 'metrics.json'}, {out / 'report.md'} and "
          f"{len(plots)} plots ({', '.join(p.name for p in plots)})")
    return 0


def _vae_plots(model, history, test, y_test, out: Path, dataset: str):
    B = get_backend()
    shape = image_shape(model.x_dim)
    n_show = min(10, test.shape[0])
    mu, logvar = model.encode(test)
    mu_h, logvar_h = B.to_numpy(mu), B.to_numpy(logvar)
    written = [
        plot_training_curves(history, out / "curves.png", title="Training curves (negative ELBO)"),
        plot_image_grid(B.to_numpy(model.sample(100, seed=0)), out / "samples.png", image_shape=shape,
                              title="Samples: decoder means at z ~ N(0, I)"),
        plot_reconstructions(test[:n_show], B.to_numpy(model.reconstruct(test[:n_show])),
                                   out / "reconstructions.png", image_shape=shape,
                                   title="Test images (top) and reconstructions at z = mu(x)"),
        vae_plots.plot_latent_scatter(mu_h, y_test, out / "latent.png", title="Posterior means of the test images"),
        vae_plots.plot_posterior_stats(mu_h, logvar_h, out / "posterior.png",
                                   title="Per-dimension posterior statistics (test set)"),
    ]
    return [Path(p) for p in written]


def _write_report(out: Path, report: dict, plots) -> None:
    t = report["test"]
    h = report["history"]
    lines = [
        f"# refvae run: {report['model']}", "",
        f"Dataset `{report['dataset']}`, backend `{report['backend']}`, {report['training']['epochs']} epochs, "
        f"batch {report['training']['batch_size']}, {report['training']['optimizer']} lr {report['training']['lr']}, "
        f"binarisation {report['training']['binarize']}, {report['training']['seconds']:.1f} s of training.", "",
        "| test metric (nats per example) | value |", "|---|---|",
        f"| ELBO | {t['elbo']:.2f} |",
        f"| reconstruction log-likelihood E_q[log p(x|z)] | {t['reconstruction']:.2f} |",
        f"| KL(q(z|x) \\|\\| p(z)) | {t['kl']:.2f} |",
        f"| log-likelihood, importance-weighted (k={t['k']}) | {t['log_likelihood']:.2f} |", "",
        "| epoch | train loss | validation loss | seconds |", "|---|---|---|---|",
    ]
    for i, e in enumerate(h["epoch"]):
        val = h["val_loss"][i]
        lines.append(f"| {e} | {h['train_loss'][i]:.2f} | {'' if val is None else f'{val:.2f}'} | "
                     f"{h['seconds'][i]:.2f} |")
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    (out / "report.md").write_text("\n".join(lines))


def _print_metrics(m: dict) -> None:
    print(f"test ELBO {m['elbo']:.2f} nats (reconstruction {m['reconstruction']:.2f}, KL {m['kl']:.2f}); "
          f"importance-weighted log-likelihood (k={m['k']}) {m['log_likelihood']:.2f} nats")


def _evaluate(model, args) -> int:
    """``refvae evaluate`` for a Gaussian VAE checkpoint."""
    _, meta = load_checkpoint(args.checkpoint)
    dataset = args.dataset
    _, _, test, _ = load_from_args(args)
    metrics = evaluate_vae(model, test, k=args.iw_samples, seed=args.seed, progress=not args.no_progress)
    trained = meta.get("training", {}).get("epochs_done")
    print(f"{model}" + (f", trained {trained} epochs" if trained else "") + f", on {dataset} ({metrics['n']} test images)")
    _print_metrics(metrics)
    if args.json:
        write_json(Path(args.json), {"checkpoint": str(args.checkpoint), "dataset": dataset, "test": metrics})
    return 0


def _diagnose(args) -> int:
    B = get_backend()
    model = load_model(args.checkpoint)
    _, meta = load_checkpoint(args.checkpoint)
    if not isinstance(model, GaussianVAE):
        raise ValueError(f"refvae diagnose needs a Gaussian VAE checkpoint; {args.checkpoint} holds a "
                         f"{type(model).__name__}")
    if model.prior == "learned":
        print("the model has a learned prior: diagnosing its equivalent standard-prior model (refvae.absorb_prior)")
        model = absorb_prior(model)
    train, _, test, _ = load_from_args(args)
    X = train if args.split == "train" else test
    if args.size:
        X = X[:args.size]
    report = prior_mismatch(model, X)
    print(report)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "diagnose"
    out.mkdir(parents=True, exist_ok=True)
    written = [vae_plots.plot_aggregate_vs_prior(report, out / "aggregate_vs_prior.png")]
    mu, logvar = model.encode(X)
    z = mu + B.xp.exp(0.5 * logvar) * B.rng(args.seed).normal(tuple(mu.shape), model.dtype_name)  # z ~ q(z|x)
    worst = np.argsort(-report.kl)[:min(8, model.z_dim)]
    written.append(vae_plots.plot_aggregate_histograms(B.to_numpy(z), worst, out / "aggregate_histograms.png",
                                                             kls=report.kl))
    written.append(vae_plots.plot_correlation(report.correlation, out / "correlation.png"))
    history = meta.get("training", {}).get("history", {})
    if history.get("mismatch_kl"):
        written.append(vae_plots.plot_series(
            {"diagonal Gaussian": history["mismatch_kl"], "full covariance": history["mismatch_kl_full"]},
            out / "mismatch_history.png", ylabel="KL(aggregate || prior), nats",
            title="Mismatch between aggregate posterior and prior during training"))
    write_json(out / "diagnose.json", {"checkpoint": str(args.checkpoint), "dataset": args.dataset,
                                       "split": args.split, **report.to_dict()})
    print(f"wrote {out / 'diagnose.json'} and {len(written)} plots ({', '.join(Path(p).name for p in written)})")
    return 0


def add_diagnose_parser(sub) -> None:
    """``refvae diagnose``."""
    dg = sub.add_parser("diagnose", help="how far the aggregate posterior is from the prior: report and plots")
    dg.add_argument("checkpoint")
    add_backend_argument(dg)
    dg.add_argument("--dataset", default="mnist-10k")
    dg.add_argument("--data-dir", default=None)
    dg.add_argument("--split", choices=["train", "test"], default="train")
    dg.add_argument("--size", type=int, default=None, help="use only the first N examples")
    dg.add_argument("--out", default=None, help="output directory (default: diagnose/ beside the checkpoint)")
    dg.add_argument("--seed", type=int, default=0)
    dg.set_defaults(run=_diagnose)



register_train_command(add_train_parser)
register_evaluator("GaussianVAE", _evaluate)
register_command(add_diagnose_parser)
