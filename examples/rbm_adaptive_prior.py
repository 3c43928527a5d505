"""Does the RBM's adaptive hidden prior matter? And CD-1 against CD-k against PCD, by AIS.

Part 1, exact (784-16, where log Z is exact): held-out log-likelihood with the hidden biases trained
(adaptive prior), kept at 0 (fixed prior), and trained with a sparsity target of 0.1; several seeds, paired
differences with their standard errors, whichever way they go.
Part 2, AIS (784-500): test log-likelihood of CD-1, CD-10 and PCD-1 (adaptive prior) and of CD-10 with the
fixed prior, log Z by AIS with 100 chains and 14,500 temperatures (Salakhutdinov & Murray 2008), with the
±3 s.d. bounds. CD-k: SGD 0.01 with momentum 0.9 for EPOCHS epochs. PCD-1 gets the same number of Gibbs sweeps
as CD-10 (5 x EPOCHS epochs of one sweep and one positive phase each) with the learning rate decayed linearly
to 0 and momentum 0.5, as persistent chains need (Tieleman 2008): with CD's fixed 0.01 and momentum 0.9 for
EPOCHS epochs it reached only about -178 nats.

    python examples/rbm_adaptive_prior.py                  # 5 seeds x 3 arms exact + 3 AIS runs (several minutes)
    python examples/rbm_adaptive_prior.py --quick          # seconds (CI)
    python examples/rbm_adaptive_prior.py --skip-exact     # part 2 only; part 1 is read back from OUT/results.json

Writes OUT/summary.md and OUT/results.json.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

import refvae
from refvae.cli import use_backend_or_exit
from rbm import BernoulliRBM
from refvae.evaluation import binarize_fixed

ARMS = {"adaptive": dict(), "fixed": dict(adaptive_prior=False), "sparse 0.1": dict(sparsity_target=0.1)}


def train(train_x, hidden, epochs, seed, lr=0.01, momentum=0.9, decay=False, **options):
    """An RBM trained with SGD; ``decay``: the learning rate falls linearly to 0 over the epochs."""
    model = BernoulliRBM(784, hidden, seed=seed, weight_decay=2e-4, **{"persistent": True, "k": 1, **options})
    model.init_visible_bias(train_x)
    optimizer = refvae.SGD(lr, momentum=momentum)

    def linear_decay(model, history):
        optimizer.lr = lr * (1.0 - len(history["epoch"]) / epochs)

    refvae.fit(model, train_x, epochs=epochs, batch_size=100, optimizer=optimizer, binarize="dynamic", seed=seed,
               progress=False, callbacks=[linear_decay] if decay else [])
    return model


def ais_arms(epochs):
    """Name -> (epochs, training options) of the large models compared by AIS."""
    return {"CD-1": (epochs, dict(persistent=False, k=1)),
            "CD-10": (epochs, dict(persistent=False, k=10)),
            "PCD-1": (5 * epochs, dict(persistent=True, k=1, momentum=0.5, decay=True)),
            "CD-10, fixed prior": (epochs, dict(persistent=False, k=10, adaptive_prior=False))}


def summary_lines(exact, ais, n_train, n_test, epochs, small, large, chains, betas, quick):
    """The lines of summary.md: part 1 (exact, per arm over seeds, paired differences) and part 2 (AIS)."""
    def stats(vals):
        a = np.array(vals)
        return a.mean(), (a.std(ddof=1) if len(a) > 1 else 0.0)

    n_seeds = max((len(runs) for runs in exact.values()), default=0)
    lines = ["# The RBM's adaptive hidden prior, and CD against PCD", "",
             ("Quick smoke run (tiny models and data: not evidence). " if quick else "")
             + f"mnist-10k, {n_train} training and {n_test} test images (one fixed binarisation), "
             f"Part 1: PCD-1, SGD 0.01 with momentum 0.9, batch 100, weight decay 2e-4, {epochs} epochs. Part 2: as named "
             f"(CD-k as in part 1; PCD-1 {5 * epochs} epochs, learning rate 0.01 decayed linearly to 0, momentum 0.5).", "",
             f"## Exact held-out log-likelihood, 784-{small}, {n_seeds} seeds", "",
             "| hidden prior | test log-likelihood (nats) | max gap ⟨P(h\\|v)⟩ vs E_model[h] |", "|---|---|---|"]
    have_exact = all(len(runs) > 0 for runs in exact.values())
    for arm, runs in (exact.items() if have_exact else []):
        m, s = stats([r["test_ll"] for r in runs])
        g, _ = stats([r["prior_gap_max"] for r in runs])
        lines.append(f"| {arm} | {m:.2f} ± {s:.2f} | {g:.3f} |")
    lines += ["", "Paired differences against the adaptive prior (same seeds), mean ± standard error:", ""]
    for arm in ARMS:
        if arm == "adaptive" or not have_exact:
            continue
        d = np.array([r["test_ll"] for r in exact[arm]]) - np.array([r["test_ll"] for r in exact["adaptive"]])
        se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
        lines.append(f"- {arm} − adaptive: {d.mean():+.2f} ± {se:.2f} nats")
    lines += ["", f"## Test log-likelihood by AIS, 784-{large} ({chains} chains, {betas} temperatures)", "",
              "| training | epochs | test log-likelihood (nats) | log Z (±3 s.d. bounds) |", "|---|---|---|---|"]
    for name, r in ais.items():
        lower = "no lower bound" if r["log_z_lower"] is None else f"{r['log_z_lower']:.2f}"
        flag = "" if r.get("trustworthy", True) else " (not trustworthy: too few effective chains)"
        lines.append(f"| {name} | {r['epochs']} | {r['test_ll']:.2f} | {r['log_z']:.2f} "
                     f"[{lower}, {r['log_z_upper']:.2f}]{flag} |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", default="runs/rbm_adaptive_prior")
    p.add_argument("--skip-exact", action="store_true",
                   help="only part 2 (AIS on the large model); part 1 is read back from OUT/results.json if there")
    args = p.parse_args(argv)
    use_backend_or_exit(p, args.backend)
    B = refvae.get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_x, test_x = refvae.datasets.load("mnist-10k")
    seeds, epochs, small, large, betas, chains = list(range(args.seeds)), args.epochs, 16, 500, 14500, 100
    if args.quick:
        train_x, test_x, seeds, epochs, small, large, betas, chains = train_x[:500], test_x[:100], [0, 1], 1, 8, 30, 50, 10
    test_bin = binarize_fixed(test_x)

    exact = {arm: [] for arm in ARMS}
    previous = out / "results.json"
    if args.skip_exact and previous.exists():
        exact = json.loads(previous.read_text()).get("exact", exact)
    for arm, options in ARMS.items():
        for seed in ([] if args.skip_exact else seeds):
            model = train(train_x, small, epochs, seed, **options)
            ll = float(B.xp.mean(model.log_likelihood(test_bin)))
            gap = float(B.xp.max(B.xp.abs(model.aggregate_posterior(train_x) - model.hidden_marginal("exact"))))
            exact[arm].append({"seed": seed, "test_ll": ll, "prior_gap_max": gap})
            print(f"784-{small} {arm:>10} seed {seed}: exact test log-likelihood {ll:.2f}, "
                  f"max |<P(h|v)> - E[h]| {gap:.3f}")

    ais = {}
    for name, (arm_epochs, options) in ais_arms(epochs).items():
        model = train(train_x, large, arm_epochs, 0, **options)
        est = model.log_partition("ais", n_chains=chains, betas=betas, data=train_x, return_bounds=True)
        ll = float(B.xp.mean(model.log_likelihood(test_bin, log_z=est.log_z)))
        ais[name] = {"test_ll": ll, "log_z": est.log_z, "log_z_lower": est.lower if math.isfinite(est.lower) else None,
                     "log_z_upper": est.upper, "effective_chains": est.ess, "trustworthy": est.trustworthy,
                     "epochs": arm_epochs}
        print(f"784-{large} {name}: test log-likelihood {ll:.2f} ({est.describe()})")

    lines = summary_lines(exact, ais, train_x.shape[0], test_x.shape[0], epochs, small, large, chains, betas,
                          args.quick)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"exact": exact, "ais": ais}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
