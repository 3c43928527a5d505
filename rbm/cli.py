"""``refvae train rbm`` and ``refvae evaluate`` for RBM checkpoints (a plug-in of refvae.cli).

    refvae train rbm --dataset mnist-10k --hidden 500 --cd 1 --pcd --epochs 10 --out runs/rbm
    refvae evaluate runs/rbm/checkpoint.npz --dataset mnist-10k

The test log-likelihood uses the exact log Z when the smaller layer can be enumerated (at most
rbm.MAX_ENUMERATION units; beyond 20 this takes minutes on a CPU), else AIS (Salakhutdinov & Murray 2008) with
its ±3 s.d. bounds where they exist and its effective number of chains; an AIS estimate that cannot be trusted
(rbm.AISWarning) is said so in one warning line, and a bound that does not exist is written as null.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

from refvae import plots
from refvae.backend import get_backend
from refvae.cli import (AIS_PAPER_TEMPERATURES, DATASET_HELP, add_ais_arguments, add_backend_argument,
                        add_run_arguments, add_test_fraction_argument, check_memory, image_shape, load_from_args,
                        momentum_float, nonnegative_float, note, number_in, positive_float, positive_int,
                        positive_size, resume_options, run_directory, run_options, seed_int, warn, write_json)
from refvae.memory import TRAINING_COPIES
from refvae.evaluation import binarize_fixed
from refvae.optim import SGD
from refvae.train import fit

from . import partition
from .model import MAX_EXACT_TRAINING, NEGATIVE_PHASES, BernoulliRBM
from .partition import AISWarning

__all__ = ["add_train_parser", "evaluate_rbm"]

EXACT_LIMIT = 20   # units in the smaller layer up to which the plot of the hidden marginal is exact (else Gibbs)
#: The plots ``refvae train rbm`` writes into OUT (``--force`` removes them with the rest of a run).
PLOTS = ("curves.png", "filters.png", "samples.png", "hidden_frequencies.png")
#: How to fix a --dataset file with values outside [0, 1].
RANGE_FIX = "rescale them into [0, 1] (e.g. pixels / 255): the RBM's visible units are binary"


def add_train_parser(train_sub) -> None:
    p = train_sub.add_parser("rbm", help="the Bernoulli RBM (CD-k or PCD)",
                             description="Train a Bernoulli RBM, score the test images (log Z exact or by AIS) and "
                                         "write OUT/checkpoint.npz, metrics.json and plots.")
    add_backend_argument(p)
    p.add_argument("--dataset", default="mnist-10k", help="the data: " + DATASET_HELP)
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (dataset mnist)")
    add_test_fraction_argument(p)
    p.add_argument("--hidden", type=positive_int, default=500, help="hidden units")
    p.add_argument("--cd", type=positive_int, default=1, help="Gibbs steps per update (CD-k / PCD-k)")
    p.add_argument("--pcd", action="store_true", help="persistent chains (PCD) instead of CD")
    p.add_argument("--fixed-prior", action="store_true", help="keep the hidden biases at 0 (no adaptive prior)")
    p.add_argument("--negative-phase", choices=NEGATIVE_PHASES, default="gibbs",
                   help="gibbs: CD-k or PCD (--cd, --pcd); exact: by enumerating the smaller layer (at most "
                        f"{MAX_EXACT_TRAINING} units)")
    p.add_argument("--sparsity-target", type=number_in(0, 1, low_open=True, high_open=True), default=None,
                   help="target firing rate of the hidden units, in (0, 1) (default: no sparsity penalty)")
    p.add_argument("--weight-decay", type=nonnegative_float, default=2e-4, help="L2 penalty on the weights")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs (with --resume: in all)")
    p.add_argument("--batch-size", type=positive_int, default=100, help="examples per step")
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate")
    p.add_argument("--momentum", type=momentum_float, default=0.9, help="SGD momentum, in [0, 1)")
    p.add_argument("--binarize", choices=["dynamic", "static", "none"], default="dynamic",
                   help="binarise the training images: a fresh sample per batch, one fixed sample, or not at all")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the weights, the order, the chains and AIS")
    add_ais_arguments(p)
    p.add_argument("--train-size", type=positive_size, default=None,
                   help="use only the first N training images (default: all)")
    p.add_argument("--test-size", type=positive_size, default=None,
                   help="use only the first N test images (default: all)")
    add_run_arguments(p, "runs/rbm")
    p.set_defaults(run=_train_rbm)


def _chain_needs(option: str, chains: int, n_visible: int, n_hidden: int, fix: str):
    """The need (for :func:`refvae.memory.check_memory`) of ``chains`` Gibbs chains: each holds its visible and
    hidden states, their probabilities and a sweep's uniform draws."""
    return option, 4 * chains * (n_visible + n_hidden), fix


def _memory_needs(args, n_visible: int, n_train: int, n_test: int):
    """What ``refvae train rbm`` holds at one time: the weights with their gradients and the optimiser's velocity,
    a batch's Gibbs chains (and the persistent ones), the data's hidden probabilities (the test log-likelihood, the
    plots), AIS's chains."""
    batch = min(args.batch_size, n_train)
    parameters = n_visible * args.hidden + n_visible + args.hidden
    batch_chains = _chain_needs("", 2 * batch, n_visible, args.hidden, "")[1]
    return [(f"--hidden {args.hidden}", TRAINING_COPIES * parameters + 2 * (n_train + n_test) * args.hidden
             + batch_chains, "use fewer hidden units (or a smaller --batch-size)"),
            _ais_needs(args, n_visible, args.hidden)]


def _ais_needs(args, n_visible: int, n_hidden: int):
    """AIS's chains, where log Z is estimated by AIS (the smaller layer too large to enumerate)."""
    chains = args.ais_chains if min(n_visible, n_hidden) > partition.MAX_ENUMERATION else 0
    return _chain_needs(f"--ais-chains {args.ais_chains}", chains, n_visible, n_hidden, "use fewer --ais-chains")


def _log_z(model, train, args) -> dict:
    progress = not args.no_progress
    if min(model.n_visible, model.n_hidden) <= partition.MAX_ENUMERATION:
        return {"log_z": model.log_partition("exact", progress=progress), "method": "exact"}
    seconds = _ais_seconds_estimate(model, args.ais_chains, args.ais_betas)
    note(f"AIS for log Z: {args.ais_chains} chains x {args.ais_betas} temperatures, about {_duration(seconds)} here"
         + ("" if args.ais_betas == AIS_PAPER_TEMPERATURES else
            f" (Salakhutdinov & Murray's schedule, --ais-betas paper: about "
            f"{_duration(seconds * (AIS_PAPER_TEMPERATURES - 1) / max(args.ais_betas - 1, 1))})"))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AISWarning)
        est = model.log_partition("ais", n_chains=args.ais_chains, betas=args.ais_betas, data=train,
                                  seed=args.seed, return_bounds=True, progress=progress)
    for w in caught:                       # pass on any other warning as it was
        if not issubclass(w.category, AISWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    finite = math.isfinite(est.lower)
    ais = {"log_z": est.log_z, "lower": est.lower if finite else None, "upper": est.upper,
           "effective_chains": est.ess, "chains": est.n_chains, "temperatures": est.temperatures,
           "trustworthy": est.trustworthy, "description": est.describe()}
    if not finite:
        ais["no_lower_bound"] = ("3 sd(w)/sqrt(M) >= mean(w): the AIS weights are too spread out for a lower "
                                 "bound on log Z, so the log-likelihood has no upper bound")
    if any(issubclass(w.category, AISWarning) for w in caught):
        ais["warning"] = (f"the AIS estimate of log Z cannot be trusted ({est.ess:.1f} effective chains of "
                          f"{est.n_chains}" + ("" if finite else ", no lower bound on log Z")
                          + "): the test log-likelihood may be far off; raise --ais-chains or --ais-betas")
    return {"log_z": est.log_z, "lower": ais["lower"], "upper": est.upper,
            "method": f"AIS ({args.ais_chains} chains, {args.ais_betas} temperatures)",
            "seconds": time.perf_counter() - t0, "ais": ais}


def _ais_seconds_estimate(model, chains: int, temperatures: int, pilot: int = 12) -> float:
    """The wall time AIS will take, from timing ``pilot`` of its temperatures (same chains, a throw-away
    generator): AIS's cost is the same at every temperature."""
    B = get_backend()
    t0 = time.perf_counter()
    partition.ais_log_weights(model, [i / (pilot - 1) for i in range(pilot)], B.zeros((model.n_visible,),
                              model.dtype_name), chains, B.rng(0))
    return (time.perf_counter() - t0) / (pilot - 1) * (temperatures - 1)


def _duration(seconds: float) -> str:
    """"40 s", "3.5 min", "2.1 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def evaluate_rbm(model, test, train, args) -> dict:
    """Mean test log-likelihood (nats) of a binarised test set, with log Z exact (when the smaller layer has at most
    rbm.MAX_ENUMERATION units) or by AIS; with AIS, ``log_likelihood_bounds`` (None where a bound does not exist)
    and ``ais`` (the estimate, its effective number of chains, whether it can be trusted, and why not)."""
    B = get_backend()
    z = _log_z(model, train, args)
    test_bin = binarize_fixed(test)
    ll = float(B.xp.mean(model.log_likelihood(test_bin, log_z=z["log_z"])))
    out = {"log_likelihood": ll, "n": int(test.shape[0]), **z}
    if "ais" in z:   # log P(v) = -F(v) - log Z: the bounds on log Z swap into bounds on the likelihood
        out["log_likelihood_bounds"] = [ll - (z["upper"] - z["log_z"]),
                                        None if z["lower"] is None else ll + (z["log_z"] - z["lower"])]
    return out


def _print(metrics):
    bounds = metrics.get("log_likelihood_bounds")
    extra = ""
    if bounds and bounds[1] is not None:
        extra = f" (between {bounds[0]:.2f} and {bounds[1]:.2f} at ±3 s.d. of AIS)"
    elif bounds:
        extra = f" (at least {bounds[0]:.2f} at 3 s.d. of AIS; no upper bound: AIS gave no lower bound on log Z)"
    print(f"test log-likelihood {metrics['log_likelihood']:.2f} nats{extra}; log Z = {metrics['log_z']:.3f} "
          f"({metrics['method']})")
    ais = metrics.get("ais")
    if ais:
        print(f"AIS: {ais['description']}")
        if "warning" in ais:
            warn(ais["warning"])


def _train_rbm(args) -> int:
    resume_options(args)                      # with --resume: the options not given are the checkpoint's
    with run_directory(args.out, resume=args.resume, force=args.force, outputs=PLOTS) as out:
        return _run(args, out)


def _run(args, out: Path) -> int:
    B = get_backend()
    train, _, test, _ = load_from_args(args, unit_interval=True, range_fix=RANGE_FIX)
    check_memory(_memory_needs(args, train.shape[1], train.shape[0], test.shape[0]), backend=B)
    model = BernoulliRBM(train.shape[1], args.hidden, seed=args.seed, k=args.cd, persistent=args.pcd,
                         adaptive_prior=not args.fixed_prior, sparsity_target=args.sparsity_target,
                         weight_decay=args.weight_decay, negative_phase=args.negative_phase)
    model.init_visible_bias(train)
    print(f"refvae: training {model} on {args.dataset} ({train.shape[0]} train, {test.shape[0]} test) with the "
          f"{B.name} backend, writing to {out}")
    t0 = time.perf_counter()
    history = fit(model, train, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=SGD(args.lr, momentum=args.momentum), seed=args.seed,
                  binarize=None if args.binarize == "none" else args.binarize, checkpoint=out / "checkpoint.npz",
                  progress=not args.no_progress, verbose=True, resume=args.resume, options=run_options(args))
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
        plots.plot_training_curves(history, out / "curves.png", title="RBM training (free-energy gap)",
                                   ylabel="F(data) - F(model), nats per example (the training signal, not the "
                                          "likelihood)"),
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


def sample_checkpoint(model, n, args):
    """``refvae sample`` for an RBM: P(v = 1 | h) after ``args.gibbs_steps`` sweeps of Gibbs chains (binary v drawn
    from it with ``args.binary``)."""
    check_memory([_chain_needs(f"--n {n}", n, model.n_visible, model.n_hidden, "draw fewer samples at a time")],
                 model.dtype_name, backend=model.backend)
    probs = model.sample(n, steps=args.gibbs_steps, seed=args.seed)
    return model.backend.rng((args.seed, 1)).bernoulli(probs) if args.binary else probs


def evaluate_checkpoint(model, args) -> int:
    check_memory([_ais_needs(args, model.n_visible, model.n_hidden)], model.dtype_name, backend=model.backend)
    train, _, test, _ = load_from_args(args, unit_interval=True, range_fix=RANGE_FIX, width=model.n_visible)
    metrics = evaluate_rbm(model, test, train, args)
    print(f"{model} on {args.dataset} ({metrics['n']} test images)")
    _print(metrics)
    if args.json:
        write_json(Path(args.json), {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "test": metrics})
    return 0


#: Library wording -> command-line wording, for this model's errors (listed in ``refvae.app``).
COMMAND_LINE_TERMS = (
    (r"negative_phase='(\w+)'", r"--negative-phase \1"),
)
