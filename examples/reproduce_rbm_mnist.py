"""Salakhutdinov & Murray (2008) on their own data: RBMs trained by CD on the 60,000 MNIST training images, scored on
the 10,000 test images with log Z exact (25 hidden units: 2^25 states enumerated) or from AIS (500 hidden), and
bracketed from below by RAISE (Burda, Grosse & Salakhutdinov 2015).

Protocol (the paper's where it states one; docs/reproductions.md lists every difference):
  data      the standard 60,000 / 10,000 split, each image binarised once, stochastically, with a fixed seed
            (``datasets.load("mnist", binarize="stochastic-once")``)
  training  CD-k, batch 100, SGD at a constant learning rate (--lr) with momentum 0.5 for the first 5 epochs, then
            0.9, L2 weight decay 2e-4, visible biases initialised at the data's log-odds; as many epochs as fit
            the budget (--minutes), decided from the first epoch's time
  scoring   the exact log Z (25 hidden) or AIS with 100 chains and the paper's 14,500 temperatures (500 on
            [0, 0.5), 4,000 on [0.5, 0.9), 10,000 on [0.9, 1]) from the base-rate model, over --ais-seeds seeds;
            RAISE on a random subset of --raise-images test images, --raise-chains reverse chains each, with
            the same temperatures

    python examples/reproduce_rbm_mnist.py train --model cd1-25 --minutes 2
    python examples/reproduce_rbm_mnist.py train --model cd1-500 --minutes 45
    python examples/reproduce_rbm_mnist.py train --model cd25-500 --minutes 45
    python examples/reproduce_rbm_mnist.py evaluate --model cd1-25 cd1-500 cd25-500
    python examples/reproduce_rbm_mnist.py all --quick         # seconds: every stage on a tiny slice (CI)

Writes OUT/<model>.npz (the trained RBM: refvae checkpoint, no pickle), OUT/<model>_training.json and
OUT/<model>_evaluation.json; OUT defaults to docs/results/reproductions/rbm_mnist.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import refvae
from rbm import BernoulliRBM, raise_log_likelihood
from refvae.checkpoint import atomic_file
from refvae.cli import use_backend_or_exit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "results" / "reproductions" / "rbm_mnist"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"

#: The paper's models: name -> (hidden units, Gibbs steps k).
MODELS = {"cd1-25": (25, 1), "cd1-500": (500, 1), "cd3-500": (500, 3), "cd25-500": (500, 25)}
MOMENTUM_EPOCHS = 5            # momentum 0.5 for these first epochs, then 0.9 (Hinton & Salakhutdinov's code)
BATCH = 100
WEIGHT_DECAY = 2e-4
BINARIZATION_SEED = 0


def load_data(args):
    """(train, test) binary float32 host arrays: the full MNIST, binarised once; --quick: 1,000 / 200 images of
    the embedded set."""
    if args.quick:
        train, test = refvae.datasets.load("mnist-10k", binarize="stochastic-once", binarize_seed=BINARIZATION_SEED)
        return train[:1000], test[:200]
    return refvae.datasets.load("mnist", data_dir=args.data_dir, binarize="stochastic-once",
                                binarize_seed=BINARIZATION_SEED)


def write_json(path: Path, obj) -> None:
    with atomic_file(path) as f:
        f.write((json.dumps(obj, indent=1) + "\n").encode("utf-8"))
    print(f"written {path}")


QUICK_HIDDEN = {25: 10, 500: 50}    # --quick: smaller models of the same kinds (2^10 states to enumerate)


def new_model(name, train, B, seed, quick=False):
    hidden, k = MODELS[name]
    hidden = QUICK_HIDDEN[hidden] if quick else hidden
    model = BernoulliRBM(784, hidden, k=k, persistent=False, seed=seed)
    model.init_visible_bias(B.asarray(train))
    return model


def epochs_in_budget(name, train, args, B) -> tuple[int, float]:
    """How many epochs fit ``args.minutes``: one epoch of a throwaway copy, timed (at least 1, at most
    --max-epochs)."""
    if args.epochs:
        return args.epochs, math.nan
    probe = new_model(name, train, B, args.seed, args.quick)
    t0 = time.perf_counter()
    refvae.fit(probe, B.asarray(train), epochs=1, batch_size=BATCH, optimizer=refvae.SGD(args.lr, momentum=0.5,
               weight_decay=WEIGHT_DECAY), seed=args.seed, progress=False, verbose=False)
    per_epoch = time.perf_counter() - t0
    return max(1, min(args.max_epochs, int(args.minutes * 60 / per_epoch))), per_epoch


def train(name, args, B):
    train_x, test_x = load_data(args)
    epochs, per_epoch = epochs_in_budget(name, train_x, args, B)
    print(f"{name}: {epochs} epochs ({per_epoch:.2f} s per epoch measured, budget {args.minutes} min)", flush=True)
    model = new_model(name, train_x, B, args.seed, args.quick)
    optimizer = refvae.SGD(args.lr, momentum=0.5, weight_decay=WEIGHT_DECAY)

    def momentum_schedule(model, history):           # 0.5 for the first MOMENTUM_EPOCHS epochs, then 0.9
        if len(history["epoch"]) >= MOMENTUM_EPOCHS:
            optimizer.momentum = 0.9

    t0 = time.perf_counter()
    history = refvae.fit(model, B.asarray(train_x), epochs=epochs, batch_size=BATCH, optimizer=optimizer,
                         seed=args.seed, progress=False, verbose=not args.quiet, callbacks=[momentum_schedule])
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / f"{name}.npz", reproduction={"paper": "Salakhutdinov & Murray 2008", "model": name})
    write_json(out / f"{name}_training.json", {
        "model": name, "hidden": model.n_hidden, "k": MODELS[name][1], "epochs": epochs, "lr": args.lr,
        "batch_size": BATCH, "momentum": f"0.5 for {MOMENTUM_EPOCHS} epochs, then 0.9", "weight_decay": WEIGHT_DECAY,
        "binarization": f"stochastic once, seed {BINARIZATION_SEED}", "n_train": int(train_x.shape[0]),
        "seed": args.seed, "budget_minutes": args.minutes, "seconds": seconds, "quick": args.quick,
        "train_loss": [float(x) for x in history["train_loss"]], "command": " ".join(sys.argv)})


def mean_log_p(model, X, log_z, B) -> float:
    return float(np.mean(B.to_numpy(model.log_likelihood(B.asarray(X), log_z=log_z)).astype(np.float64)))


def evaluate(name, args, B):
    """The test (and train) log-probabilities of a trained model: exact where 2^hidden is enumerable, AIS over
    seeds, RAISE on a subset of the test images; every estimate with its time."""
    train_x, test_x = load_data(args)
    out = Path(args.out)
    model = BernoulliRBM.load(out / f"{name}.npz")
    chains, betas = (20, 200) if args.quick else (args.ais_chains, args.ais_betas)
    result = {"model": name, "n_test": int(test_x.shape[0]), "ais_chains": chains, "ais_betas": betas,
              "command": " ".join(sys.argv), "quick": args.quick}
    data = B.asarray(train_x)
    exact_log_z = None
    if min(model.n_hidden, model.n_visible) <= 25:
        t0 = time.perf_counter()
        exact_log_z = model.log_partition("exact", progress=not args.quiet)
        result["exact"] = {"log_z": exact_log_z, "seconds": time.perf_counter() - t0,
                           "test_log_p": mean_log_p(model, test_x, exact_log_z, B),
                           "train_log_p": mean_log_p(model, train_x, exact_log_z, B)}
        print(f"{name}: exact log Z {exact_log_z:.3f}, test {result['exact']['test_log_p']:.3f}", flush=True)
    runs = []
    for seed in args.ais_seeds:
        t0 = time.perf_counter()
        est = model.log_partition("ais", n_chains=chains, betas=betas, data=data, seed=seed, return_bounds=True,
                                  progress=not args.quiet)
        runs.append({"seed": seed, "log_z": est.log_z, "lower": est.lower if math.isfinite(est.lower) else None,
                     "upper": est.upper, "ess": est.ess, "trustworthy": est.trustworthy,
                     "seconds": time.perf_counter() - t0, "test_log_p": mean_log_p(model, test_x, est.log_z, B)})
        print(f"{name}: AIS seed {seed}: {est.describe()} ({runs[-1]['seconds']:.0f} s)", flush=True)
    log_zs = [r["log_z"] for r in runs]
    result["ais"] = {"runs": runs, "mean_log_z": statistics.fmean(log_zs),
                     "sd_log_z": statistics.stdev(log_zs) if len(log_zs) > 1 else None,
                     "test_log_p": mean_log_p(model, test_x, statistics.fmean(log_zs), B)}
    rng = np.random.default_rng(args.seed)
    subset = np.sort(rng.choice(test_x.shape[0], size=min(args.raise_images, test_x.shape[0]), replace=False))
    t0 = time.perf_counter()
    r = raise_log_likelihood(model, B.asarray(test_x[subset]), n_chains=args.raise_chains, betas=betas, data=data,
                             seed=args.seed, progress=not args.quiet)
    ais_same = float(np.mean(B.to_numpy(model.log_likelihood(B.asarray(test_x[subset]),
                                                             log_z=result["ais"]["mean_log_z"]))))
    result["raise"] = {"images": int(subset.size), "chains_per_image": r.n_chains, "mean_log_p": r.mean, "se": r.se, "implied_log_z": r.log_z,
                       "implied_log_z_se": r.log_z_se, "ais_log_p_same_images": ais_same,
                       "seconds": time.perf_counter() - t0}
    if exact_log_z is not None:
        result["raise"]["exact_log_p_same_images"] = mean_log_p(model, test_x[subset], exact_log_z, B)
    print(f"{name}: {r.describe()}; AIS on the same images {ais_same:.2f}", flush=True)
    write_json(out / f"{name}_evaluation.json", result)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", nargs="?", choices=["train", "evaluate", "all"], default="all",
                   help="train, evaluate the saved checkpoints, or both (default)")
    p.add_argument("--model", nargs="+", choices=sorted(MODELS), default=["cd1-25"])
    p.add_argument("--minutes", type=float, default=45.0, help="training budget per model")
    p.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs instead of the budget")
    p.add_argument("--max-epochs", type=int, default=2000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ais-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--ais-chains", type=int, default=100)
    p.add_argument("--ais-betas", type=int, default=14500)
    p.add_argument("--raise-images", type=int, default=100, help="test images RAISE scores (default 100)")
    p.add_argument("--raise-chains", type=int, default=10, help="reverse chains per image (default 10)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=None, help=f"default {DEFAULT_OUT} (--quick: runs/reproduce_rbm_mnist)")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--quick", action="store_true", help="seconds: 1,000 embedded images, 2 epochs, small AIS/RAISE")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(Path("runs") / "reproduce_rbm_mnist") if args.quick else str(DEFAULT_OUT)
    if args.quick:
        args.epochs, args.ais_seeds, args.raise_images, args.raise_chains = 2, args.ais_seeds[:2], 20, 2
    use_backend_or_exit(p, args.backend)
    B = refvae.get_backend()
    for name in args.model:
        if args.stage in ("train", "all"):
            train(name, args, B)
        if args.stage in ("evaluate", "all"):
            evaluate(name, args, B)


if __name__ == "__main__":
    main()
