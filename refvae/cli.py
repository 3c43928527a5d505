"""The ``refvae`` command line.

    refvae train vae --dataset mnist-10k --epochs 10 --backend numpy --out runs/vae
    refvae evaluate runs/vae/checkpoint.npz --dataset mnist-10k
    refvae sample runs/vae/checkpoint.npz --n 100 --out samples.png
    refvae diagnose runs/vae/checkpoint.npz --dataset mnist-10k
    refvae gradcheck --backend strict

Every command takes ``--backend {numpy,cupy,strict}``. Errors are printed as one line that says
what was wrong and how to fix it, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import datasets
from .backend import BACKENDS, BackendError, get_backend, set_backend
from .checkpoint import CheckpointError, kind_of, load_checkpoint, load_model
from .checks import DataError
from .evaluation import evaluate_vae
from .optim import SGD, Adam
from .train import TrainingError, fit
from .vae import LIKELIHOODS, GaussianVAE

__all__ = ["PLUGINS", "add_backend_argument", "image_shape", "load_from_args", "load_labeled", "main", "write_json"]

# Packages that add models to the command line. Each may define
#   add_train_parser(train_subparsers)   -> adds "refvae train <model>" (set_defaults(run=...))
#   EVALUATORS = {kind: fn(model, args) -> int}   -> "refvae evaluate" for its checkpoints
PLUGINS = ("rbm.cli", "wakesleep.cli")


def _plugins():
    import importlib

    for name in PLUGINS:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name not in (name, name.split(".")[0]):
                raise

USER_ERRORS = (BackendError, CheckpointError, DataError, TrainingError, ValueError, FileNotFoundError)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def add_backend_argument(p):
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="array backend (default: $REFVAE_BACKEND or numpy); cupy runs on the GPU")


def image_shape(x_dim: int):
    """(side, side) for square images, else (1, x_dim)."""
    side = int(round(x_dim ** 0.5))
    return (side, side) if side * side == x_dim else (1, x_dim)


def load_labeled(name, **kwargs):
    """(train, train_labels, test, test_labels) of a named data set (host arrays)."""
    (train, y_train), (test, y_test) = datasets.load(name, labels=True, **kwargs)
    return train, y_train, test, y_test


def load_from_args(args):
    """(train, train_labels, test, test_labels) of ``args.dataset`` (from ``args.data_dir`` if given), cut to the
    first ``args.train_size`` / ``args.test_size`` examples where those options exist and are set."""
    train, y_train, test, y_test = load_labeled(args.dataset,
                                                **({"data_dir": args.data_dir} if args.data_dir else {}))
    n_train, n_test = getattr(args, "train_size", None), getattr(args, "test_size", None)
    if n_train:
        train, y_train = train[:n_train], y_train[:n_train]
    if n_test:
        test, y_test = test[:n_test], y_test[:n_test]
    return train, y_train, test, y_test


def _hidden(text: str):
    text = text.strip()
    if not text:
        return ()
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated widths such as 400 or 500,200; got {text!r}")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON (NumPy scalars become numbers)."""
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


# ------------------------------------------------------------------------------------------------
# train vae
# ------------------------------------------------------------------------------------------------
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
    from . import plots

    B = get_backend()
    shape = image_shape(model.x_dim)
    n_show = min(10, test.shape[0])
    mu, logvar = model.encode(test)
    mu_h, logvar_h = B.to_numpy(mu), B.to_numpy(logvar)
    written = [
        plots.plot_training_curves(history, out / "curves.png", title="Training curves (negative ELBO)"),
        plots.plot_image_grid(B.to_numpy(model.sample(100, seed=0)), out / "samples.png", image_shape=shape,
                              title="Samples: decoder means at z ~ N(0, I)"),
        plots.plot_reconstructions(test[:n_show], B.to_numpy(model.reconstruct(test[:n_show])),
                                   out / "reconstructions.png", image_shape=shape,
                                   title="Test images (top) and reconstructions at z = mu(x)"),
        plots.plot_latent_scatter(mu_h, y_test, out / "latent.png", title="Posterior means of the test images"),
        plots.plot_posterior_stats(mu_h, logvar_h, out / "posterior.png",
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


# ------------------------------------------------------------------------------------------------
# evaluate, sample, gradcheck
# ------------------------------------------------------------------------------------------------
def _evaluate(args) -> int:
    model = load_model(args.checkpoint)
    _, meta = load_checkpoint(args.checkpoint)
    if not isinstance(model, GaussianVAE):
        for plugin in _plugins():
            evaluator = getattr(plugin, "EVALUATORS", {}).get(kind_of(model))
            if evaluator is not None:
                return evaluator(model, args)
        raise ValueError(f"refvae evaluate does not handle {type(model).__name__} checkpoints")
    dataset = args.dataset
    _, _, test, _ = load_from_args(args)
    metrics = evaluate_vae(model, test, k=args.iw_samples, seed=args.seed, progress=not args.no_progress)
    trained = meta.get("training", {}).get("epochs_done")
    print(f"{model}" + (f", trained {trained} epochs" if trained else "") + f", on {dataset} ({metrics['n']} test images)")
    _print_metrics(metrics)
    if args.json:
        write_json(Path(args.json), {"checkpoint": str(args.checkpoint), "dataset": dataset, "test": metrics})
    return 0


def _sample(args) -> int:
    from . import plots

    B = get_backend()
    model = load_model(args.checkpoint)
    x = B.to_numpy(model.sample(args.n, mean=not args.binary, seed=args.seed))
    out = Path(args.out)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x)
    else:
        plots.plot_image_grid(x, out, image_shape=image_shape(x.shape[1]), title=f"{args.n} samples")
    print(f"wrote {args.n} samples to {out}")
    return 0


def _diagnose(args) -> int:
    from . import aggregate_plots
    from .aggregate import absorb_prior, prior_mismatch

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
    written = [aggregate_plots.plot_aggregate_vs_prior(report, out / "aggregate_vs_prior.png")]
    mu, logvar = model.encode(X)
    z = mu + B.xp.exp(0.5 * logvar) * B.rng(args.seed).normal(tuple(mu.shape), model.dtype_name)  # z ~ q(z|x)
    worst = np.argsort(-report.kl)[:min(8, model.z_dim)]
    written.append(aggregate_plots.plot_aggregate_histograms(B.to_numpy(z), worst, out / "aggregate_histograms.png",
                                                             kls=report.kl))
    written.append(aggregate_plots.plot_correlation(report.correlation, out / "correlation.png"))
    history = meta.get("training", {}).get("history", {})
    if history.get("mismatch_kl"):
        written.append(aggregate_plots.plot_series(
            {"diagonal Gaussian": history["mismatch_kl"], "full covariance": history["mismatch_kl_full"]},
            out / "mismatch_history.png", ylabel="KL(aggregate || prior), nats",
            title="Mismatch between aggregate posterior and prior during training"))
    write_json(out / "diagnose.json", {"checkpoint": str(args.checkpoint), "dataset": args.dataset,
                                       "split": args.split, **report.to_dict()})
    print(f"wrote {out / 'diagnose.json'} and {len(written)} plots ({', '.join(Path(p).name for p in written)})")
    return 0


def _gradcheck(args) -> int:
    from .gradcheck_models import run_all

    B = get_backend()
    ok = True
    for name, result in run_all(seed=args.seed):
        print(f"== {name} [{B.name}]")
        print(result)
        ok &= result.ok
    print("all gradient checks passed" if ok else "SOME GRADIENT CHECKS FAILED")
    return 0 if ok else 1


# ------------------------------------------------------------------------------------------------
# parser
# ------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refvae", description=__doc__.split("\n")[0] + " Models: vae.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model, evaluate it, write checkpoint, metrics and plots")
    train_sub = train.add_subparsers(dest="model", required=True)
    vae = train_sub.add_parser("vae", help="the Gaussian VAE")
    add_backend_argument(vae)
    vae.add_argument("--dataset", default="mnist-10k", help="mnist-10k (embedded), mnist, or bars")
    vae.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (dataset mnist)")
    vae.add_argument("--epochs", type=int, default=10)
    vae.add_argument("--batch-size", type=int, default=128)
    vae.add_argument("--z-dim", type=int, default=20)
    vae.add_argument("--hidden", type=_hidden, default=(400,), help="hidden widths, e.g. 400 or 500,200")
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
    for plugin in _plugins():
        if hasattr(plugin, "add_train_parser"):
            plugin.add_train_parser(train_sub)

    ev = sub.add_parser("evaluate", help="test ELBO and importance-weighted log-likelihood of a checkpoint")
    ev.add_argument("checkpoint")
    add_backend_argument(ev)
    ev.add_argument("--dataset", default="mnist-10k")
    ev.add_argument("--data-dir", default=None)
    ev.add_argument("--iw-samples", type=int, default=1000, help="importance samples (VAE, Helmholtz machine)")
    ev.add_argument("--test-size", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    ev.add_argument("--ais-chains", type=int, default=100, help="AIS chains for a large RBM's log Z")
    ev.add_argument("--ais-betas", type=int, default=14500, help="AIS temperatures for a large RBM's log Z")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(run=_evaluate)

    sa = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid (or .npy)")
    sa.add_argument("checkpoint")
    add_backend_argument(sa)
    sa.add_argument("--n", type=int, default=100)
    sa.add_argument("--out", default="samples.png", help="a .png image grid, or .npy for the raw array")
    sa.add_argument("--binary", action="store_true", help="draw x ~ p(x|z) instead of the decoder's mean")
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(run=_sample)

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

    gc = sub.add_parser("gradcheck", help="float64 finite-difference checks of every model's gradients")
    add_backend_argument(gc)
    gc.add_argument("--seed", type=int, default=0)
    gc.set_defaults(run=_gradcheck)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.backend:
            set_backend(args.backend)
        return args.run(args)
    except USER_ERRORS as err:
        print(f"refvae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refvae: interrupted; the last completed epoch is in the checkpoint (resume with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
