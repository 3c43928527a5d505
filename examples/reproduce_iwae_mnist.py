"""Burda, Grosse & Salakhutdinov (2016), Table 1, one stochastic layer: the VAE (k = 1) and the IWAE on their protocol.

Protocol (the paper's, section 5; docs/reproductions.md lists every difference):
  data        the 60,000 MNIST training images as grey levels, binarised afresh each time a batch is drawn
              (dynamic binarisation); scored on the 10,000 test images, binarised once with a fixed seed
  model       784-200-200-50 encoder and 50-200-200-784 Bernoulli decoder, tanh hidden units, Gaussian q(z | x)
              with a log-variance head; weights by the Glorot & Bengio uniform heuristic, biases 0, the decoder's
              output biases at the log-odds of the mean training pixel
  training    Adam (beta1 0.9, beta2 0.999, eps 1e-4), batch 20, the paper's schedule: for i = 0..7, 3^i passes at
              the learning rate 1e-3 * 10^(-i/7) (3,280 passes in all); here as many as --passes (default 364:
              stages 0-5, about 45 minutes on one core), the budget stated in the output
  scoring     the importance-weighted estimate of log p(x) with k = 5,000 on all 10,000 test images; during
              training a cheaper one (k = 100 on 1,000 test images) at the end of each stage and every 20 passes:
              the test curve

    python examples/reproduce_iwae_mnist.py                      # the VAE row: 364 passes, then k = 5000
    python examples/reproduce_iwae_mnist.py --passes 40          # a shorter run (stages 0-3)
    python examples/reproduce_iwae_mnist.py --iwae 5 --passes 40 # the IWAE row, trained on L_5
    python examples/reproduce_iwae_mnist.py --quick              # seconds: the embedded images, 2 passes (CI)

Writes OUT/NAME.npz (the trained model: refvae checkpoint, no pickle), OUT/NAME.json (settings, the test curve,
the final scores, the command, the time) and OUT/NAME_curve.png, NAME being vae_k1 or iwae_k<k>; OUT defaults to
docs/results/reproductions/iwae_mnist.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import refvae
from refvae.checkpoint import atomic_file
from refvae.cli import use_backend_or_exit
from refvae.evaluation import binarize_fixed
from refvae.numerics import clipped_logit
from refvae.plots import save_figure
from refvae.vae.evaluation import evaluate_vae

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "results" / "reproductions" / "iwae_mnist"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"

# Table 1, MNIST, one stochastic layer: test NLL (nats) of the VAE trained with k = 1 and of the IWAE trained with k
PAPER_NLL = {"vae_k1": 86.76, "iwae_k5": 85.54, "iwae_k50": 84.78}
STAGES = 8                     # i = 0..7: 3^i passes at 1e-3 * 10^(-i/7)
BATCH = 20
CURVE_K, CURVE_IMAGES = 100, 1000


def stage_of_pass(p: int) -> int:
    """The stage i of the 0-based pass p: stage i holds passes [sum_{j<i} 3^j, sum_{j<=i} 3^j)."""
    i, end = 0, 1
    while p >= end:
        i += 1
        end += 3 ** i
    return i


def learning_rate(p: int) -> float:
    """The paper's rate for pass p: 1e-3 * 10^(-i/7) in stage i."""
    return 1e-3 * 10.0 ** (-stage_of_pass(p) / 7.0)


def stage_ends(n_passes: int) -> list:
    """The pass counts at which a stage ends (1, 4, 13, 40, 121, 364, 1093, 3280), up to n_passes."""
    ends, total = [], 0
    for i in range(STAGES):
        total += 3 ** i
        if total <= n_passes:
            ends.append(total)
    return ends


def glorot_init(model, train_mean) -> None:
    """Weights uniform in +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010), biases 0, the decoder's output
    biases at the log-odds of the mean training pixel (clipped to [1e-3, 1 - 1e-3]); set with ``set_params``
    (``model.params`` is a view: assigning into it would change nothing)."""
    init = np.random.default_rng(model.seed)
    new = {}
    for name, array in sorted(model.params.items()):
        shape = tuple(array.shape)
        if name.endswith(".W"):
            limit = math.sqrt(6.0 / (shape[0] + shape[1]))
            new[name] = init.uniform(-limit, limit, size=shape)
        elif name == "decoder.logits.b":
            new[name] = clipped_logit(np.asarray(train_mean, dtype=np.float64), 1e-3)   # host float64
        else:
            new[name] = np.zeros(shape)
    model.set_params(new)


def write_json(path: Path, obj) -> None:
    with atomic_file(path) as f:
        f.write((json.dumps(obj, indent=1) + "\n").encode("utf-8"))
    print(f"written {path}")


def plot_curve(curve, path, paper_value, label):
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.subplots()
    passes = [c["passes"] for c in curve]
    ax.plot(passes, [-c["log_likelihood"] for c in curve], "o-", label=f"refvae: test NLL, IW k={CURVE_K} on "
                                                                         f"{CURVE_IMAGES} test images")
    ax.plot(passes, [-c["elbo"] for c in curve], "s--", alpha=0.7, label="refvae: test -ELBO (same images)")
    if paper_value is not None:
        ax.axhline(paper_value, color="k", lw=1, ls=":", label=f"Burda et al. 2016, {label}, after 3,280 passes: "
                                                               f"{paper_value}")
    ax.set_xscale("log")
    ax.set_xlabel("passes over the 60,000 training images (log scale)")
    ax.set_ylabel("nats per test image")
    ax.set_title(f"784-200-200-50 {label}, the IWAE paper's protocol: the test curve", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def load_data(args):
    """(train grey levels, test grey levels) float32 host arrays: the full MNIST, or --quick's embedded slice."""
    if args.quick:
        train, test = refvae.datasets.load("mnist-10k")
        return train[:1000], test[:200]
    return refvae.datasets.load("mnist", data_dir=args.data_dir)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--passes", type=int, default=364, help="passes over the training set (paper: 3280)")
    p.add_argument("--k", type=int, default=5000, help="importance samples of the final test score")
    p.add_argument("--iwae", type=int, default=None, metavar="K",
                   help="train the IWAE on L_K (objective='iwae', iwae_k=K) instead of the VAE on the ELBO")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=None, help=f"default {DEFAULT_OUT} (--quick: runs/reproduce_iwae_mnist)")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--quick", action="store_true", help="seconds: 1,000 embedded images, 2 passes, k = 50")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--force", action="store_true", help="replace a result of the same name already in --out")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(Path("runs") / "reproduce_iwae_mnist") if args.quick else str(DEFAULT_OUT)
    args.name = "vae_k1" if args.iwae is None else f"iwae_k{args.iwae}"
    existing = [f for f in (f"{args.name}.json", f"{args.name}.npz") if (Path(args.out) / f).exists()]
    if existing and not args.force:             # refused before hours of training, not after
        p.error(f"{Path(args.out) / existing[0]} exists: pass --force to replace it, or --out DIR to keep it")
    if args.passes < 1 or args.k < 1 or (args.iwae is not None and args.iwae < 1):
        p.error("--passes, --k and --iwae must be positive")
    args.curve_k, args.curve_images = (10, 100) if args.quick else (CURVE_K, CURVE_IMAGES)
    if args.quick:
        args.passes, args.k = 2, 50
    use_backend_or_exit(p, args.backend)
    return args


def train(args, B, train_x, curve_x):
    """The model trained on the paper's schedule for args.passes passes: (model, history, test curve, seconds)."""
    objective = {} if args.iwae is None else {"objective": "iwae", "iwae_k": args.iwae}
    model = refvae.GaussianVAE(784, 50, hidden=(200, 200), activation="tanh", seed=args.seed, **objective)
    glorot_init(model, train_x.mean(axis=0))
    optimizer = refvae.Adam(learning_rate(0), betas=(0.9, 0.999), eps=1e-4)
    ends, curve = set(stage_ends(args.passes)), []

    def after_pass(model, history):
        done = len(history["epoch"])
        optimizer.lr = learning_rate(done)                         # the rate of the next pass
        if done in ends or done % 20 == 0 or done == args.passes:
            s = evaluate_vae(model, curve_x, k=args.curve_k, elbo_draws=1, seed=args.seed)
            curve.append({"passes": done, "log_likelihood": s["log_likelihood"], "elbo": s["elbo"],
                          "train_loss": history["train_loss"][-1], "seconds": sum(history["seconds"])})
            if not args.quiet:
                print(f"pass {done}: test NLL (k={args.curve_k}, {args.curve_images} images) "
                      f"{-s['log_likelihood']:.2f}, -ELBO {-s['elbo']:.2f}, lr now {optimizer.lr:.2e}", flush=True)

    t0 = time.perf_counter()
    history = refvae.fit(model, B.asarray(train_x), epochs=args.passes, batch_size=BATCH, optimizer=optimizer,
                         seed=args.seed, binarize="dynamic", progress=False, verbose=False, callbacks=[after_pass])
    return model, history, curve, time.perf_counter() - t0


def score(model, test_x, args, B) -> dict:
    """The final test scores: the ELBO, the IW estimate with args.k samples and its standard error over the test
    images, and the active units."""
    t0 = time.perf_counter()
    final = evaluate_vae(model, test_x, k=1, elbo_draws=10, seed=args.seed)          # the test ELBO
    test_bin = binarize_fixed(B.asarray(test_x))                                     # the same binary test set
    log_p = B.to_numpy(model.log_likelihood(test_bin, k=args.k, rng=B.rng((args.seed, 2)),
                                            progress=not args.quiet)).astype(np.float64)  # (n_test,)
    mu = B.to_numpy(model.encode(test_bin)[0]).astype(np.float64)                    # E_q[u | x], (n_test, 50)
    return {"test_nll": -float(log_p.mean()), "test_nll_se": float(log_p.std(ddof=1) / math.sqrt(log_p.size)),
            "test_elbo": final["elbo"], "k": args.k, "n_test": int(log_p.size),
            # Burda et al.: a unit is active when Cov_x(E_q[u]) > 1e-2
            "active_units": int(np.sum(np.var(mu, axis=0) > 1e-2)), "eval_seconds": time.perf_counter() - t0}


def main(argv=None):
    args = parse_args(argv)
    B = refvae.get_backend()
    name = args.name
    label = "VAE k=1" if args.iwae is None else f"IWAE k={args.iwae}"
    train_x, test_x = load_data(args)
    curve_x = test_x[np.random.default_rng(args.seed).choice(test_x.shape[0], args.curve_images, replace=False)]
    model, history, curve, train_seconds = train(args, B, train_x, curve_x)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / f"{name}.npz")
    scores = score(model, test_x, args, B)
    write_json(out / f"{name}.json", {
        "paper": "Burda, Grosse & Salakhutdinov 2016, Table 1", "row": f"{label}, one stochastic layer",
        "paper_test_nll": PAPER_NLL.get(name), "paper_passes": 3280, "passes": args.passes,
        "stages_completed": len(stage_ends(args.passes)), **scores, "train_seconds": train_seconds,
        "curve": curve, "train_loss": history["train_loss"], "batch_size": BATCH, "seed": args.seed,
        "quick": args.quick, "command": " ".join(sys.argv)})
    plot_curve(curve, out / f"{name}_curve.png", PAPER_NLL.get(name), label)
    print(f"{label} after {args.passes} passes ({train_seconds / 60:.1f} min): test NLL {scores['test_nll']:.2f} "
          f"nats +- {scores['test_nll_se']:.2f} (IW k={args.k}, {scores['n_test']} images), -ELBO "
          f"{-scores['test_elbo']:.2f}, {scores['active_units']} active units; the paper: {PAPER_NLL.get(name)} "
          "after 3,280 passes")


if __name__ == "__main__":
    main()
