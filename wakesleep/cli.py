"""``refvae train helmholtz`` and ``refvae evaluate`` for Helmholtz-machine checkpoints (a plug-in of refvae.cli).

    refvae train helmholtz --dataset hinton-bars --layers 8,1 --epochs 40 --out runs/bars
    refvae train helmholtz --dataset mnist-10k --layers 200,50 --algorithm rws --k 5 --out runs/hm
    refvae evaluate runs/hm/checkpoint.npz --dataset mnist-10k

``--layers`` lists the hidden layers bottom to top; the visible layer's width comes from the data. On the toy
datasets with a known distribution ("bars", "hinton-bars") the training set is drawn from that distribution
and the evaluation is KL(data || model) over all the data's patterns: exact when the hidden layers have at
most MAX_HIDDEN_ENUMERATION units in all, else with importance-sampled likelihoods (``--iw-samples`` samples
from Q; the KL is then an upper bound in expectation). On other datasets the test log-likelihood is exact or
importance-sampled by the same rule.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from refvae import datasets, plots
from refvae.backend import get_backend
from refvae.cli import (DATASET_HELP, add_backend_argument, add_run_arguments, add_test_fraction_argument,
                        check_memory, check_width, image_shape, load_from_args, momentum_float, nonnegative_float,
                        number_in, positive_float, positive_int, positive_size, resume_options, run_directory,
                        run_options, seed_int, write_json)
from refvae.memory import TRAINING_COPIES, parameter_count
from refvae.evaluation import binarize_fixed, kl_data_model
from refvae.optim import SGD
from refvae.train import fit

from .model import ALGORITHMS, MAX_HIDDEN_ENUMERATION, PRIOR_UPDATES, PRIORS, HelmholtzMachine

__all__ = ["add_train_parser", "evaluate_helmholtz"]

TOY = ("bars", "hinton-bars")      # datasets whose exact distribution is known
#: The plots ``refvae train helmholtz`` writes into OUT (``--force`` removes them with the rest of a run).
PLOTS = ("curves.png", "dreams.png", "firing_rates.png")
#: How to fix a --dataset file with values outside [0, 1].
RANGE_FIX = "rescale them into [0, 1] (e.g. pixels / 255): the Helmholtz machine's units are binary"


def _layers(text: str):
    try:
        sizes = tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes comma-separated hidden-layer widths, bottom to top, such "
                                         f"as 8,1 or 200,50; got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--layers needs positive widths, got {text!r}")
    return sizes


def add_train_parser(train_sub) -> None:
    p = train_sub.add_parser("helmholtz", help="a Helmholtz machine trained by wake-sleep or reweighted wake-sleep",
                             description="Train a Helmholtz machine, measure KL(data || model) on a toy dataset or "
                                         "the test log-likelihood, and write OUT/checkpoint.npz, metrics.json and "
                                         "plots.")
    add_backend_argument(p)
    p.add_argument("--dataset", default="hinton-bars", help="the data: " + DATASET_HELP)
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (dataset mnist)")
    add_test_fraction_argument(p)
    p.add_argument("--layers", type=_layers, default=(8, 1), help="hidden widths bottom to top, e.g. 8,1 or 200,50")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="wake-sleep", help="the learning rule")
    p.add_argument("--k", type=positive_int, default=1, help="samples from Q per example (rws)")
    p.add_argument("--prior", choices=PRIORS, default="factorial", help="the top layer's prior")
    p.add_argument("--prior-update", choices=PRIOR_UPDATES, default="gradient",
                   help="how the top prior learns: the wake-phase gradient or moment matching")
    p.add_argument("--prior-rate", type=number_in(0, 1, low_open=True), default=0.05,
                   help="rho of the moment-matching prior update, in (0, 1]")
    p.add_argument("--rbm-hidden", type=positive_int, default=None, help="hidden units of the RBM prior")
    p.add_argument("--init-std", type=nonnegative_float, default=None,
                   help="initial weights N(0, s^2) and zero biases (default: uniform in ±1/sqrt(fan-in))")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs (with --resume: in all)")
    p.add_argument("--batch-size", type=positive_int, default=10, help="examples per step")
    p.add_argument("--lr", type=positive_float, default=0.1, help="learning rate")
    p.add_argument("--momentum", type=momentum_float, default=0.9, help="SGD momentum, in [0, 1)")
    p.add_argument("--lr-decay", action="store_true", help="decay the learning rate linearly to 0 over the epochs")
    p.add_argument("--binarize", choices=["dynamic", "static", "none"], default="dynamic",
                   help="binarise the training data: a fresh sample per batch, one fixed sample, or not at all")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the weights, the training sample, the order and noise")
    p.add_argument("--iw-samples", type=positive_int, default=1000,
                   help="importance samples per test image (large models)")
    p.add_argument("--train-size", type=positive_size, default=None,
                   help="training examples (toy datasets: draws from the exact distribution, default 20000)")
    p.add_argument("--test-size", type=positive_size, default=None,
                   help="use only the first N test images (default: all; not used by the toy datasets)")
    add_run_arguments(p, "runs/helmholtz")
    p.set_defaults(run=_train_helmholtz)


def _memory_needs(args, x_dim: int, n_train: int):
    """What ``refvae train helmholtz`` holds at one time: both networks' weights with their gradients and momenta
    (and an RBM prior's) and the evaluation's samples of every layer (its importance samples, the firing rates of
    up to 5000 examples and 2000 dreams); a batch's --k samples of every layer; the training data."""
    sizes = (x_dim, *args.layers)
    top = args.layers[-1]
    rbm = top * (args.rbm_hidden or min(top, 16)) if args.prior == "rbm" else top
    parameters = parameter_count(sizes[::-1]) + parameter_count(sizes) + rbm
    evaluation = 3 * (8192 + min(n_train, 5000) + 2000) * sum(sizes)    # importance chunks, firing rates, dreams
    widest = f"--layers {','.join(map(str, args.layers))}"
    return [(widest, TRAINING_COPIES * parameters + evaluation, "use narrower layers"),
            (f"--k {args.k}", 6 * min(args.batch_size, n_train) * args.k * sum(sizes),
             "use fewer samples per example (--k) or a smaller --batch-size"),
            (f"--train-size {n_train}", 3 * n_train * x_dim, "use a smaller --train-size")]


def _data(args):
    """(train, test) host arrays; for a toy dataset train is drawn from the exact distribution, test is None. The
    run's memory is checked before the draws are made."""
    if args.dataset in TOY:
        patterns, probs = datasets.data_distribution(args.dataset)
        n_train = args.train_size or 20000
        check_memory(_memory_needs(args, patterns.shape[1], n_train), backend=get_backend())
        return datasets.sample_distribution(patterns, probs, n_train, seed=args.seed), None
    train, _, test, _ = load_from_args(args, unit_interval=True, range_fix=RANGE_FIX)
    check_memory(_memory_needs(args, train.shape[1], train.shape[0]), backend=get_backend())
    return train, test


def evaluate_helmholtz(model, dataset, test=None, iw_samples=1000, seed=0) -> dict:
    """KL(data || model) over a toy dataset's patterns (exact when the hidden units can be enumerated, else with
    importance-sampled likelihoods), or the mean test log-likelihood, exact or by importance sampling."""
    B = get_backend()
    exact = sum(model.layer_sizes[1:]) <= MAX_HIDDEN_ENUMERATION
    if dataset in TOY:
        patterns, probs = datasets.data_distribution(dataset)
        if exact:
            log_p = B.to_numpy(model.log_likelihood(patterns, method="exact"))
            method = "exact (all patterns, all hidden states)"
        else:   # a lower bound on each log P(x) in expectation, so the KL below is an upper bound in expectation
            log_p = B.to_numpy(model.log_likelihood(patterns, method="importance", k=iw_samples, seed=seed))
            method = (f"importance sampling from Q, k={iw_samples}, over all patterns ({sum(model.layer_sizes[1:])} "
                      f"hidden units are too many to enumerate): the KL is an upper bound in expectation")
        kl = kl_data_model(probs, log_p)
        entropy = float(-np.sum(probs * np.log(probs)))
        return {"kl_data_model": kl, "kl_bits": kl / math.log(2.0), "data_entropy": entropy,
                "expected_log_likelihood": -(entropy + kl), "method": method,
                "model_mass_on_data": float(np.sum(np.exp(log_p)))}
    test_bin = binarize_fixed(test)
    if exact:
        ll = model.log_likelihood(test_bin, method="exact")
        method = "exact (all hidden states)"
    else:
        ll = model.log_likelihood(test_bin, method="importance", k=iw_samples, seed=seed)
        method = f"importance sampling from Q, k={iw_samples}"
    return {"log_likelihood": float(B.xp.mean(ll)), "n": int(test.shape[0]), "method": method}


def _print(metrics):
    if "kl_data_model" in metrics:
        print(f"KL(data || model) = {metrics['kl_data_model']:.4f} nats ({metrics['kl_bits']:.4f} bits); the data's "
              f"entropy is {metrics['data_entropy']:.4f} nats; the model puts {metrics['model_mass_on_data']:.3f} "
              f"of its probability on the data's patterns ({metrics['method']})")
    else:
        print(f"test log-likelihood {metrics['log_likelihood']:.2f} nats ({metrics['method']})")


def _framed(images, shape, value=0.5):
    """Each image (n, h*w) inside a one-pixel frame of grey ``value``: (n, (h+2)*(w+2)) and the new shape, so that
    the tiles of a grid stay apart whatever their edge pixels (white tiles would merge with a white gap)."""
    h, w = shape
    framed = np.full((images.shape[0], h + 2, w + 2), value, dtype=np.float64)
    framed[:, 1:-1, 1:-1] = np.asarray(images, dtype=np.float64).reshape(-1, h, w)
    return framed.reshape(images.shape[0], -1), (h + 2, w + 2)


def _train_helmholtz(args) -> int:
    resume_options(args)                      # with --resume: the options not given are the checkpoint's
    with run_directory(args.out, resume=args.resume, force=args.force, outputs=PLOTS) as out:
        return _run(args, out)


def _run(args, out: Path) -> int:
    B = get_backend()
    train, test = _data(args)
    model = HelmholtzMachine((train.shape[1], *args.layers), seed=args.seed, algorithm=args.algorithm, k=args.k,
                             prior=args.prior, prior_update=args.prior_update, prior_rate=args.prior_rate,
                             rbm_hidden=args.rbm_hidden, init_std=args.init_std)
    print(f"refvae: training {model} on {args.dataset} ({train.shape[0]} training examples) with the {B.name} "
          f"backend, writing to {out}")
    optimizer = SGD(args.lr, momentum=args.momentum)

    def linear_decay(model, history):
        optimizer.lr = args.lr * max(0.0, 1.0 - len(history["epoch"]) / args.epochs)

    callbacks = [linear_decay] if args.lr_decay else []
    if args.dataset in TOY:
        patterns, probs = datasets.data_distribution(args.dataset)

        def record_kl(model, history):
            log_p = B.to_numpy(model.log_likelihood(patterns, method="exact"))
            history.setdefault("kl_data_model", []).append(kl_data_model(probs, log_p))

        if sum(args.layers) <= MAX_HIDDEN_ENUMERATION:
            callbacks.append(record_kl)
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer,
                  seed=args.seed, binarize=None if args.binarize == "none" else args.binarize,
                  checkpoint=out / "checkpoint.npz", progress=not args.no_progress, verbose=True,
                  resume=args.resume, callbacks=callbacks, options=run_options(args))
    seconds = time.perf_counter() - t0
    metrics = evaluate_helmholtz(model, args.dataset, test, args.iw_samples, args.seed)
    write_json(out / "metrics.json", {"model": model.config, "dataset": args.dataset, "backend": B.name,
                                      "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                                                   "lr": args.lr, "momentum": args.momentum,
                                                   "lr_decay": args.lr_decay, "seconds": seconds},
                                      "test": metrics, "history": history})
    shape = image_shape(model.layer_sizes[0])
    rates = [(B.to_numpy(a), B.to_numpy(g)) for a, g in model.firing_rates(train[:5000], seed=args.seed)]
    dreams, framed_shape = _framed(B.to_numpy(model.sample(100, seed=args.seed)), shape)
    written = [
        plots.plot_training_curves(history, out / "curves.png",
                                   title=f"Helmholtz machine, {args.algorithm}: training loss",
                                   ylabel="negative ELBO" + (" (importance-weighted)" if args.k > 1 else "")
                                   + ", nats per example"),
        plots.plot_image_grid(dreams, out / "dreams.png", image_shape=framed_shape,
                              title="Dreams: P(x = 1 | h_1) of ancestral samples (grey frames)",
                              colorbar="P(x = 1 | h_1)"),
        plots.plot_firing_rates(rates, out / "firing_rates.png"),
    ]
    _print(metrics)
    print(f"wrote {out / 'checkpoint.npz'}, {out / 'metrics.json'} and {len(written)} plots "
          f"({', '.join(Path(p).name for p in written)})")
    return 0


def sample_checkpoint(model, n, args):
    """``refvae sample`` for a Helmholtz machine: dreams, P(x = 1 | h_1) of ancestral samples (binary x with
    ``args.binary``)."""
    check_memory([(f"--n {n}", 3 * n * sum(model.layer_sizes), "draw fewer samples at a time")], model.dtype_name,
                 backend=model.backend)
    return model.sample(n, seed=args.seed, mean=not args.binary)


def evaluate_checkpoint(model, args) -> int:
    check_memory([(f"--iw-samples {args.iw_samples}", 4 * min(args.iw_samples, 8192) * sum(model.layer_sizes),
                   "use fewer --iw-samples")], model.dtype_name, backend=model.backend)
    if args.dataset in TOY:
        test = None
        check_width(args.dataset, datasets.data_distribution(args.dataset)[0].shape[1], model.layer_sizes[0])
    else:
        test = load_from_args(args, unit_interval=True, range_fix=RANGE_FIX, width=model.layer_sizes[0])[2]
    metrics = evaluate_helmholtz(model, args.dataset, test, args.iw_samples, args.seed)
    print(f"{model} on {args.dataset}")
    _print(metrics)
    if args.json:
        write_json(Path(args.json), {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "test": metrics})
    return 0


#: Library wording -> command-line wording, for this model's errors (listed in ``refvae.app``).
COMMAND_LINE_TERMS = (
    (r"algorithm='([\w-]+)' or '([\w-]+)'", r"--algorithm \1 or \2"),
    (r"algorithm='([\w-]+)'", r"--algorithm \1"), (r"\bk=(\d+)", r"--k \1"),
    (r"\bprior='(\w+)'", r"--prior \1"), (r"\brbm_hidden=(\d+)", r"--rbm-hidden \1"),
)
