"""Hinton's bars problem: how close do wake-sleep and reweighted wake-sleep get to the data distribution?

The data (Hinton, Dayan, Frey & Neal, Science 1995): 4 x 4 images, vertical bars with probability 2/3 and
horizontal otherwise, each bar of the chosen orientation on with probability 0.2; 30 distinct images. The model is
the paper's 16-8-1 Helmholtz machine. Because both the data distribution and, for a model this small, the model's
likelihood are exact, KL(data || model) = sum_x p(x) log(p(x) / P(x)) is measured exactly after every epoch, for:

- wake-sleep with the top prior following the wake-phase gradient, and with the moment-matching update
  p <- (1 - rho) p + rho <Q(h_top | .)>;
- reweighted wake-sleep (k = 5 samples) with the same two prior updates;
- exact maximum likelihood (``algorithm="exact"``: the 9 hidden units' 512 configurations enumerated, the exact
  gradient of the log-likelihood, Q trained towards the exact posterior) with the same two prior updates: what
  the same budget reaches when the gradient is exact;

over several seeds (a seed fixes the initial weights, the training sample and the order). The 1995 paper trained
on 2 x 10^6 examples and reports a small residual KL; by default this script uses the same number of examples
(40 epochs of 50,000), SGD 0.1 with momentum 0.9 and batch 10, the learning rate decayed linearly to 0.

    python examples/wake_sleep_bars.py                  # 6 arms x 3 seeds
    python examples/wake_sleep_bars.py --arms "wake-sleep, gradient prior" --seeds 10 --lr-rec 0.5
    python examples/wake_sleep_bars.py --paper-procedure --epochs 20 --jobs 2   # the paper's procedure, 20 seeds
    python examples/wake_sleep_bars.py --quick          # seconds (CI)

--paper-procedure is the procedure as the 1995 paper describes it: online updates (batch 1), no momentum, a small
constant learning rate (the paper does not state its value: --lr, default PAPER_PROCEDURE_LR), the generative
visible biases initialised at the data's log-odds, wake-sleep with the gradient prior, 20 seeds.

--lr-gen, --lr-rec and --lr-prior scale the learning rate of the generative weights, the recognition weights and
the top prior's biases separately (``GroupScaledSGD`` scales their gradients: with classical momentum the same thing).
A run "finds the bars" when each of the 8 hidden units codes a different bar: switching the unit on (the others
off) raises P(x_i = 1 | h) most on exactly the 4 pixels of one bar.

Writes OUT/summary.md, OUT/results.json and OUT/kl_curves.png.
"""

import argparse
import contextlib
import functools
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import refvae
from refvae.checkpoint import atomic_file
from refvae.cli import use_backend_or_exit
from refvae import datasets
from refvae.evaluation import kl_data_model
from refvae.plots import save_figure
from wakesleep import HelmholtzMachine

# --paper-procedure's rate without --lr: the paper's is not stated; 0.03 was the best of a pilot (0.01, 0.03, 0.1, 0.3
# for 200,000 examples, 2 seeds: docs/reproductions.md) whose KL was still falling at the end
PAPER_PROCEDURE_LR = 0.03

ARMS = {
    "wake-sleep, gradient prior": dict(algorithm="wake-sleep", prior_update="gradient"),
    "wake-sleep, moment prior": dict(algorithm="wake-sleep", prior_update="moment"),
    "RWS k=5, gradient prior": dict(algorithm="rws", k=5, prior_update="gradient"),
    "RWS k=5, moment prior": dict(algorithm="rws", k=5, prior_update="moment"),
    "exact ML, gradient prior": dict(algorithm="exact", prior_update="gradient"),
    "exact ML, moment prior": dict(algorithm="exact", prior_update="moment"),
}


def bars_found(model, B, side=4):
    """Whether the 8 units of the first hidden layer code the 8 bars, one each: for unit j alone on, the 4 pixels
    whose P(x = 1 | h) rises most form a bar, and no two units pick the same bar."""
    W, b = (B.to_numpy(model.params[k]) for k in ("gen.1.W", "gen.1.b"))      # (n_1, 16), (16,)
    if W.shape[0] != 2 * side:
        return False
    rise = 1 / (1 + np.exp(-(W + b))) - 1 / (1 + np.exp(-b))                   # (n_1, 16)
    bars = {frozenset(range(r * side, (r + 1) * side)) for r in range(side)}    # horizontal: a row
    bars |= {frozenset(range(col, side * side, side)) for col in range(side)}  # vertical: a column
    picked = [frozenset(np.argsort(-rise[j])[:side].tolist()) for j in range(W.shape[0])]
    return all(p in bars for p in picked) and len(set(picked)) == len(picked)


class GroupScaledSGD(refvae.SGD):
    """SGD with classical momentum whose step multiplies each group's gradient by its factor (name prefix -> factor):
    with classical momentum the same as scaling that group's learning rate."""

    def __init__(self, lr, momentum, scales):
        super().__init__(lr, momentum=momentum)
        self.scales = dict(scales)

    def step(self, params, grads):
        factor = {k: next((f for p, f in self.scales.items() if k.startswith(p)), 1.0) for k in grads}
        super().step(params, {k: g * factor[k] for k, g in grads.items()})


def run(arm_options, seed, n_train, epochs, lr, batch_size, layers, patterns, probs, B, init_std=None, scales=None,
        momentum=0.9, schedule="linear", visible_log_odds=False):
    """Train one machine; returns (KL after each epoch, seconds, final top-prior gap, whether it found the bars).

    ``schedule``: "linear" decays the learning rate linearly to 0 over the epochs, "constant" keeps it;
    ``visible_log_odds`` starts the generative visible biases at the training sample's log-odds."""
    train = datasets.sample_distribution(patterns, probs, n_train, seed=seed)
    model = HelmholtzMachine((16, *layers), seed=seed, init_std=init_std, **arm_options)
    if visible_log_odds:
        model.init_visible_bias(train)
    if scales and any(f != 1.0 for f in scales.values()):
        optimizer = GroupScaledSGD(lr, momentum, scales)
    else:
        optimizer = refvae.SGD(lr, momentum=momentum)
    kls = []

    def after_epoch(model, history):
        kls.append(kl_data_model(probs, B.to_numpy(model.log_likelihood(patterns, method="exact"))))
        if schedule == "linear":
            optimizer.lr = lr * (1.0 - len(history["epoch"]) / epochs)       # linear decay to 0

    t0 = time.perf_counter()
    history = refvae.fit(model, train, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                         progress=False, callbacks=[after_epoch])
    return kls, time.perf_counter() - t0, history["prior_gap_max"][-1], bars_found(model, B)


def write_text(path, text):
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))


def run_job(job, n_train, epochs, args, scales):
    """One (arm, seed) of the command line's runs, in a worker process."""
    arm, seed = job
    B = refvae.get_backend()
    patterns, probs = datasets.data_distribution("hinton-bars")
    return run(ARMS[arm], seed, n_train, epochs, args.lr, args.batch_size, (8, 1), patterns, probs, B, args.init_std,
               scales, args.momentum, args.schedule, args.visible_log_odds)


def plot_curves(results, examples_per_epoch, path):
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.subplots()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for colour, (arm, runs) in zip(colours, results.items()):
        curves = np.array([r["kl"] for r in runs])                          # (seeds, epochs)
        x = examples_per_epoch * np.arange(1, curves.shape[1] + 1)
        for c in curves:
            ax.plot(x, c, color=colour, lw=0.7, alpha=0.4)
        ax.plot(x, np.median(curves, axis=0), color=colour, lw=2.0, label=f"{arm} (median of {len(runs)} seeds)")
    ax.set_yscale("log")
    ax.set_xlabel("training examples seen")
    ax.set_ylabel("KL(data || model), nats (log scale)")
    ax.set_title("Hinton's bars, 16-8-1 Helmholtz machine: exact KL (thin lines: single seeds)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; --paper-procedure: 20)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--n-train", type=int, default=50000, help="training examples per epoch")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default 0.1; --paper-procedure: {PAPER_PROCEDURE_LR})")
    p.add_argument("--lr-gen", type=float, default=1.0, help="factor on the generative weights' learning rate")
    p.add_argument("--lr-rec", type=float, default=1.0, help="factor on the recognition weights' learning rate")
    p.add_argument("--lr-prior", type=float, default=1.0, help="factor on the top prior biases' learning rate")
    p.add_argument("--arms", nargs="+", choices=list(ARMS), default=None,
                   help="default: all six (--paper-procedure: wake-sleep, gradient prior)")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--init-std", type=float, default=None,
                   help="initial weights N(0, s^2) and zero biases (default: uniform in ±1/sqrt(fan-in))")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--schedule", choices=["linear", "constant"], default="linear",
                   help="the learning rate decayed linearly to 0 over the epochs, or constant")
    p.add_argument("--visible-log-odds", action="store_true",
                   help="start the generative visible biases at the training sample's log-odds")
    p.add_argument("--paper-procedure", action="store_true",
                   help="the 1995 paper's procedure: online updates (batch 1), no momentum, a constant rate "
                        f"(--lr, default {PAPER_PROCEDURE_LR}), visible biases at the data's log-odds, wake-sleep "
                        "only, 20 seeds")
    p.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel processes")
    p.add_argument("--out", default="runs/wake_sleep_bars")
    args = p.parse_args(argv)
    paper = args.paper_procedure
    if paper:
        args.batch_size, args.momentum, args.schedule, args.visible_log_odds = 1, 0.0, "constant", True
    if args.arms is None:
        args.arms = ["wake-sleep, gradient prior"] if paper else list(ARMS)
    if args.seeds is None:
        args.seeds = 20 if paper else 3
    if args.lr is None:
        args.lr = PAPER_PROCEDURE_LR if paper else 0.1
    use_backend_or_exit(p, args.backend)
    B = refvae.get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    patterns, probs = datasets.data_distribution("hinton-bars")
    entropy = float(-np.sum(probs * np.log(probs)))
    seeds, epochs, n_train = list(range(args.seeds)), args.epochs, args.n_train
    if args.quick:
        seeds, epochs, n_train = [0, 1], 2, 2000
    scales = {"gen.": args.lr_gen, "rec.": args.lr_rec, "prior.": args.lr_prior}
    results = {arm: [] for arm in args.arms}
    jobs = [(arm, seed) for arm in args.arms for seed in seeds]
    train_one = functools.partial(run_job, n_train=n_train, epochs=epochs, args=args, scales=scales)
    with (ProcessPoolExecutor(args.jobs, initializer=refvae.set_backend, initargs=(args.backend,))
          if args.jobs > 1 else contextlib.nullcontext()) as pool:
        outcomes = pool.map(train_one, jobs) if pool is not None else map(train_one, jobs)
        for (arm, seed), (kls, seconds, gap, found) in zip(jobs, outcomes):
            results[arm].append({"seed": seed, "kl": kls, "seconds": seconds, "top_prior_gap": gap,
                                 "bars_found": found})
            print(f"{arm:>28} seed {seed}: KL(data || model) {kls[-1]:.4f} nats = {kls[-1] / math.log(2):.4f} bits "
                  f"after {epochs * n_train} examples ({seconds:.1f} s); |P(h_top) - <Q(h_top|.)>| = {gap:.4f}; "
                  f"bars found: {found}", flush=True)

    lines = ["# Hinton's bars: wake-sleep and reweighted wake-sleep, measured exactly", "",
             ("Quick smoke run (too short to mean anything). " if args.quick else "")
             + ("The 1995 paper's procedure (--paper-procedure). " if args.paper_procedure else "")
             + f"16-8-1 Helmholtz machine, {epochs} epochs of {n_train} draws from the bars distribution "
             f"({epochs * n_train} examples), batch {args.batch_size}, SGD {args.lr} with momentum {args.momentum:g}, "
             + ("decayed linearly to 0" if args.schedule == "linear" else "constant")
             + f" (factors on it: generative {args.lr_gen:g}, recognition {args.lr_rec:g}, top prior "
             f"{args.lr_prior:g}), {len(seeds)} seeds, initial weights "
             + ("uniform in ±1/sqrt(fan-in)" if args.init_std is None else f"N(0, {args.init_std:g}²), biases 0")
             + (", generative visible biases at the data's log-odds" if args.visible_log_odds else "")
             + f", backend {B.name}. The data's entropy is {entropy:.4f} nats; a "
             "model that put all its mass uniformly on the 30 patterns would have KL "
             f"{math.log(30) - entropy:.3f} nats.", "",
             "| algorithm and prior update | final KL, nats (mean ± s.d.) | bits: best | median | worst "
             "| runs at ≤ 0.10 bits | runs that found the bars | top prior gap |", "|---|---|---|---|---|---|---|---|"]
    for arm, runs in results.items():
        final = np.array([r["kl"][-1] for r in runs])
        bits = final / math.log(2)
        sd = final.std(ddof=1) if len(final) > 1 else 0.0
        gap = np.mean([r["top_prior_gap"] for r in runs])
        lines.append(f"| {arm} | {final.mean():.4f} ± {sd:.4f} | {bits.min():.4f} | {np.median(bits):.4f} | "
                     f"{bits.max():.4f} | {int(np.sum(bits <= 0.10))} of {len(runs)} | "
                     f"{sum(r['bars_found'] for r in runs)} of {len(runs)} | {gap:.4f} |")
    lines += ["", "KL after each epoch is in results.json; the curves are in kl_curves.png.", "",
              "![KL during training](kl_curves.png)", ""]
    plot_curves(results, n_train, out / "kl_curves.png")
    write_text(out / "summary.md", "\n".join(lines))
    write_text(out / "results.json", json.dumps({"settings": {**vars(args), "epochs": epochs, "n_train": n_train,
                                                              "seeds": seeds, "data_entropy": entropy,
                                                              "command": " ".join(sys.argv)},
                                                 "results": results}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
