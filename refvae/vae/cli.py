"""The Gaussian VAE's commands: ``refvae train vae`` (train, evaluate, write checkpoint, metrics, report and
plots), its ``refvae evaluate`` (test ELBO and importance-weighted log-likelihood) and ``refvae diagnose`` (the
aggregate posterior against the prior: report and plots)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..backend import get_backend
from ..checkpoint import atomic_file, load_checkpoint, load_model
from ..cli import (DATASET_HELP, FLOAT32_MAX, FLOAT32_TINY, add_backend_argument, add_run_arguments,
                   add_test_fraction_argument, check_memory, data_options_from_checkpoint, image_shape, load_from_args,
                   make_directory, markdown_cell, momentum_float, parse_hidden, positive_float, positive_int,
                   positive_size, resume_options, run_directory, run_options, seed_int, write_json)
from ..memory import TRAINING_COPIES, parameter_count
from ..optim import SGD, Adam
from ..plots import plot_image_grid, plot_reconstructions, plot_training_curves
from ..train import TrainingError, fit
from . import plots as vae_plots
from .aggregate import absorb_prior, aggregate_posterior, prior_mismatch
from .evaluation import evaluate_vae
from .model import DECODER_VARIANCES, LIKELIHOODS, GaussianVAE

__all__ = ["add_diagnose_parser", "add_train_parser"]


#: The plots ``refvae train vae`` writes into OUT (``--force`` removes them with the rest of a run).
PLOTS = ("curves.png", "samples.png", "reconstructions.png", "latent.png", "posterior.png")


def _decoder_variance(text: str):
    """``--decoder-variance``: one of the named kinds, or a fixed variance that float32 holds as a normal number
    (from its smallest normal number, about 1.2e-38, to its largest, about 3.4e38)."""
    import argparse

    if text in DECODER_VARIANCES:
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not FLOAT32_TINY <= value <= FLOAT32_MAX:
        raise argparse.ArgumentTypeError(f"choose one of {', '.join(DECODER_VARIANCES)}, or a positive number for a "
                                         f"fixed variance, in [{FLOAT32_TINY:.3g}, {FLOAT32_MAX:.3g}] (float32 holds no smaller or "
                                         f"larger variance); got {text!r}")
    return value


def _memory_needs(args, x_dim: int, n_train: int, n_test: int):
    """What ``refvae train vae`` holds at one time, as :func:`refvae.memory.check_memory` needs: the parameters with
    their gradients and Adam's two moments, a batch's activations (forward values, caches, gradients) and the test
    set's in the evaluation, all growing with the widths; the data on the device (and a binarised copy); the
    evaluation's chunk of decoded importance samples."""
    hidden = tuple(args.hidden)
    outputs = 2 * x_dim if args.likelihood == "gaussian" else x_dim
    widths = [x_dim, *hidden, 2 * args.z_dim, args.z_dim, *reversed(hidden), outputs]
    parameters = parameter_count([x_dim, *hidden, 2 * args.z_dim]) + parameter_count([args.z_dim, *reversed(hidden),
                                                                                      outputs])
    widest = f"--hidden {','.join(map(str, hidden))}" if hidden and max(hidden) >= args.z_dim \
        else f"--z-dim {args.z_dim}"
    batch = min(args.batch_size, n_train)
    evaluation = 3 * n_test * sum(widths)                   # the test set's ELBO terms, and its codes for the plots
    return [(widest, TRAINING_COPIES * parameters + evaluation + 3 * batch * sum(widths),
             "use fewer hidden units or latent dimensions (or a smaller --batch-size)"),
            (f"--dataset {args.dataset}", 2 * (n_train + n_test) * x_dim, "use --train-size and --test-size"),
            (f"--iw-samples {args.iw_samples}", 4 * min(args.iw_samples, 8192) * sum(widths[3:]),
             "use fewer --iw-samples")]


def add_train_parser(train_sub) -> None:
    """``refvae train vae``."""
    vae = train_sub.add_parser("vae", help="the Gaussian VAE",
                               description="Train the Gaussian VAE, evaluate it on the test images and write OUT/"
                                           "checkpoint.npz, metrics.json, report.md and plots.")
    add_backend_argument(vae)
    vae.add_argument("--dataset", default="mnist-10k",
                     help="the data: mnist-10k (embedded), mnist (downloaded, or --data-dir), bars, hinton-bars, or a "
                          "data file of your own: .npy, .npz or .csv, one example per row (README, 'Your own data')")
    vae.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (dataset mnist)")
    add_test_fraction_argument(vae)
    vae.add_argument("--epochs", type=positive_int, default=10, help="epochs (with --resume: in all)")
    vae.add_argument("--batch-size", type=positive_int, default=128, help="examples per step")
    vae.add_argument("--z-dim", type=positive_int, default=20, help="latent dimensions")
    vae.add_argument("--hidden", type=parse_hidden, default=(400,), help="hidden widths, e.g. 400 or 500,200")
    vae.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli", help="the decoder's p(x|z)")
    vae.add_argument("--decoder-variance", type=_decoder_variance, default="amortised",
                     help="with --likelihood gaussian: amortised (a head of z), per-dimension (factor analysis when "
                          "--hidden ''), shared (pPCA when --hidden ''), or a positive number (fixed)")
    vae.add_argument("--activation", choices=["relu", "tanh", "softplus", "sigmoid"], default="relu",
                     help="hidden-layer activation")
    vae.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="the optimiser")
    vae.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
    vae.add_argument("--momentum", type=momentum_float, default=0.9, help="for --optimizer sgd, in [0, 1)")
    vae.add_argument("--binarize", choices=["dynamic", "static", "none"], default="dynamic",
                     help="binarise the training images: a fresh sample per batch, one fixed sample, or not at all")
    vae.add_argument("--seed", type=seed_int, default=0, help="seed of the weights, the order and the noise")
    vae.add_argument("--iw-samples", type=positive_int, default=1000,
                     help="importance samples per test image for the log-likelihood (Burda et al. use 5000)")
    vae.add_argument("--train-size", type=positive_size, default=None,
                     help="use only the first N training images (default: all)")
    vae.add_argument("--test-size", type=positive_size, default=None, help="use only the first N test images "
                     "(default: all)")
    add_run_arguments(vae, "runs/vae")
    vae.set_defaults(run=_train_vae)


def _train_vae(args) -> int:
    resume_options(args)                      # with --resume: the options not given are the checkpoint's
    binarize = None if args.binarize == "none" else args.binarize
    if args.likelihood == "gaussian" and binarize is not None:
        raise ValueError("--binarize needs the Bernoulli likelihood: pass --binarize none with --likelihood gaussian")
    with run_directory(args.out, resume=args.resume, force=args.force, outputs=PLOTS) as out:
        return _run(args, out, binarize)


def _run(args, out: Path, binarize) -> int:
    B = get_backend()
    train, y_train, test, y_test = load_from_args(
        args, unit_interval=args.likelihood == "bernoulli" or binarize is not None, min_train=2,
        range_fix="rescale them into [0, 1] (e.g. pixels / 255), or pass --likelihood gaussian --binarize none")
    if train.shape[0] < 2:
        raise ValueError(f"train vae needs at least 2 training examples (the aggregate posterior is measured over "
                         f"them), got {train.shape[0]}: raise --train-size")
    check_memory(_memory_needs(args, train.shape[1], train.shape[0], test.shape[0]), backend=B)
    model = GaussianVAE(train.shape[1], args.z_dim, hidden=args.hidden, likelihood=args.likelihood,
                        activation=args.activation, seed=args.seed, decoder_variance=args.decoder_variance)
    optimizer = Adam(args.lr) if args.optimizer == "adam" else SGD(args.lr, momentum=args.momentum)
    print(f"refvae: training {model} on {args.dataset} ({train.shape[0]} train, {test.shape[0]} test images) "
          f"with the {B.name} backend, writing to {out}")
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer, seed=args.seed,
                  binarize=binarize, X_val=test, checkpoint=out / "checkpoint.npz", progress=not args.no_progress,
                  verbose=True, resume=args.resume, options=run_options(args))
    train_seconds = time.perf_counter() - t0
    print(f"evaluating on {test.shape[0]} test images (importance sampling with k={args.iw_samples}) ...")
    metrics = evaluate_vae(model, test, k=args.iw_samples, seed=args.seed, progress=not args.no_progress)
    report = {"model": model.config, "dataset": args.dataset, "backend": B.name,
              "training": {"epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
                           "lr": args.lr, "binarize": binarize, "seed": args.seed, "seconds": train_seconds},
              "test": metrics, "history": history}
    write_json(out / "metrics.json", report)
    plots, skipped = _vae_plots(model, history, test, y_test, out, args.dataset)
    _write_report(out, report, plots)
    _refuse_diverged(args, metrics, skipped, out)
    _print_metrics(metrics)
    print(f"wrote {out / 'checkpoint.npz'}, {out / 'metrics.json'}, {out / 'report.md'} and "
          f"{len(plots)} plots ({', '.join(p.name for p in plots)})")
    return 0


def _vae_plots(model, history, test, y_test, out: Path, dataset: str):
    """(the plots written, the names of those not drawn because their numbers are not finite: a diverged model)."""
    B = get_backend()
    shape = image_shape(model.x_dim)
    n_show = min(10, test.shape[0])
    mu, logvar = model.encode(test)
    mu_h, logvar_h = B.to_numpy(mu), B.to_numpy(logvar)
    samples = B.to_numpy(model.sample(100, seed=0))
    recon = B.to_numpy(model.reconstruct(test[:n_show]))
    plots = [
        ("curves.png", (), lambda: plot_training_curves(history, out / "curves.png",
                                                       title="Training curves (negative ELBO)")),
        ("samples.png", (samples,), lambda: plot_image_grid(samples, out / "samples.png", image_shape=shape,
                                                            title="Samples: decoder means at z ~ N(0, I)")),
        ("reconstructions.png", (recon,), lambda: plot_reconstructions(
            test[:n_show], recon, out / "reconstructions.png", image_shape=shape,
            title="Test images (top) and reconstructions at z = mu(x)")),
        ("latent.png", (mu_h,), lambda: vae_plots.plot_latent_scatter(mu_h, y_test, out / "latent.png",
                                                                      title="Posterior means of the test images")),
        ("posterior.png", (mu_h, logvar_h), lambda: vae_plots.plot_posterior_stats(
            mu_h, logvar_h, out / "posterior.png", title="Per-dimension posterior statistics (test set)")),
    ]
    written, skipped = [], []
    for name, arrays, draw in plots:
        if all(np.all(np.isfinite(a)) for a in arrays):
            written.append(Path(draw()))
        else:
            skipped.append(name)
    return written, skipped


def _refuse_diverged(args, metrics: dict, skipped, out: Path) -> None:
    """A trained model whose test numbers or plots are not finite diverged, whatever its training losses said."""
    bad = [k for k in ("elbo", "reconstruction", "kl", "log_likelihood") if not math.isfinite(metrics[k])]
    if bad or skipped:
        what = ", ".join([f"test {k} {metrics[k]}" for k in bad] + [f"{name} (not drawn)" for name in skipped])
        raise TrainingError(f"the trained model diverged: its {what} hold non-finite numbers; train again with a "
                            f"smaller --lr (this run: {args.lr}); {out / 'report.md'} and metrics.json hold what is "
                            "finite")


def _architecture(config: dict) -> str:
    """'784-400-20' with the decoder's widths where they differ, e.g. '784-400-20-8-784'."""
    hidden = list(config.get("hidden") or ())
    decoder = config.get("decoder_hidden")
    widths = [config["x_dim"], *hidden, config["z_dim"]]
    if decoder is not None and list(decoder) != hidden[::-1]:
        widths += [*decoder, config["x_dim"]]
    return "-".join(map(str, widths))


def _setting(value) -> str:
    """A configuration value as text: 400,200 for a list of widths, none for None."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else markdown_cell(value)


def _write_report(out: Path, report: dict, plots) -> None:
    t = report["test"]
    h = report["history"]
    tr = report["training"]
    config = report["model"]
    cell = markdown_cell
    lines = [
        f"# Gaussian VAE {_architecture(config)} on {report['dataset']}", "",
        "Model: " + ", ".join(f"{k} {_setting(v)}" for k, v in config.items()) + ".", "",
        f"Dataset `{report['dataset']}`, backend `{report['backend']}`, {tr['epochs']} epochs, "
        f"batch {tr['batch_size']}, {tr['optimizer']} lr {tr['lr']}, binarisation {tr['binarize']}, "
        f"{tr['seconds']:.1f} s of training.", "",
        "| test metric (nats per example) | value |", "|---|---|",
        f"| ELBO | {t['elbo']:.2f} |",
        f"| {cell('reconstruction log-likelihood E_q[log p(x|z)]')} | {t['reconstruction']:.2f} |",
        f"| {cell('KL(q(z|x) || p(z))')} | {t['kl']:.2f} |",
        f"| log-likelihood, importance-weighted (k={t['k']}) | {t['log_likelihood']:.2f} |", "",
        "| epoch | train loss | validation loss | seconds |", "|---|---|---|---|",
    ]
    for i, e in enumerate(h["epoch"]):
        val = h["val_loss"][i]
        lines.append(f"| {e} | {h['train_loss'][i]:.2f} | {'' if val is None else f'{val:.2f}'} | "
                     f"{h['seconds'][i]:.2f} |")
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    with atomic_file(out / "report.md") as f:                       # complete or not there
        f.write("\n".join(lines).encode("utf-8"))


def _print_metrics(m: dict) -> None:
    print(f"test ELBO {m['elbo']:.2f} nats (reconstruction {m['reconstruction']:.2f}, KL {m['kl']:.2f}); "
          f"importance-weighted log-likelihood (k={m['k']}) {m['log_likelihood']:.2f} nats")


def sample_checkpoint(model, n, args):
    """``refvae sample`` for a Gaussian VAE: decoder means (or binary draws) at z from ``--source``: the prior, or
    the aggregate posterior over the training images of ``--dataset`` (Gaussian, full-covariance Gaussian or the
    exact mixture)."""
    check_memory([(f"--n {n}", 3 * n * (model.x_dim + model.z_dim + sum(model.decoder_hidden)),
                   "draw fewer samples at a time")], model.dtype_name, backend=model.backend)
    if args.source != "prior":
        train, _, _, _ = load_from_args(args, width=model.x_dim)
        print(f"fitting the aggregate posterior on {train.shape[0]} training images of {args.dataset} ...")
        return model.sample(n, mean=not args.binary, seed=args.seed, source=args.source,
                            aggregate=aggregate_posterior(model, train))
    return model.sample(n, mean=not args.binary, seed=args.seed)


def evaluate_checkpoint(model, args) -> int:
    """``refvae evaluate`` for a Gaussian VAE checkpoint."""
    _, meta = load_checkpoint(args.checkpoint)
    dataset = args.dataset
    check_memory([(f"--iw-samples {args.iw_samples}", 4 * min(args.iw_samples, 8192) * (
        model.x_dim + model.z_dim + sum(model.decoder_hidden)), "use fewer --iw-samples")], model.dtype_name,
        backend=model.backend)
    _, _, test, _ = load_from_args(args, unit_interval=model.likelihood == "bernoulli", width=model.x_dim)
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
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "diagnose"
    make_directory(out, "--out")
    if model.prior == "learned":
        print("the model has a learned prior: diagnosing its equivalent standard-prior model (refvae.absorb_prior)")
        model = absorb_prior(model)
    data_options_from_checkpoint(args, args.checkpoint)
    train, _, test, _ = load_from_args(args, width=model.x_dim)
    X = train if args.split == "train" else test
    if args.size:
        X = X[:args.size]
    report = prior_mismatch(aggregate_posterior(model, X))
    print(report)
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
    dg.add_argument("checkpoint", help="a Gaussian VAE checkpoint written by refvae train vae")
    add_backend_argument(dg)
    dg.add_argument("--dataset", default=None, help="the data (default: the dataset the checkpoint was trained on, "
                    "else mnist-10k): " + DATASET_HELP)
    dg.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (dataset mnist)")
    add_test_fraction_argument(dg)
    dg.add_argument("--split", choices=["train", "test"], default="train", help="which part of the data")
    dg.add_argument("--size", type=positive_size, default=None, help="use only the first N examples (default: all)")
    dg.add_argument("--out", default=None, help="output directory (default: diagnose/ beside the checkpoint)")
    dg.add_argument("--seed", type=seed_int, default=0, help="seed of the samples z ~ q(z|x) in the histograms")
    dg.set_defaults(run=_diagnose)
