"""The RBM's adaptive prior at the optimum: exact maximum likelihood, and what CD-1, CD-10 and PCD-1 cost.

With 16 hidden units the negative phase of an RBM can be enumerated (2^16 states), so the exact gradient of the
log-likelihood is available (``BernoulliRBM(..., negative_phase="exact")``). Trained with it on the full batch,
the gradient is deterministic and training converges to a maximum of the likelihood, where the hidden biases'
gradient vanishes: the aggregate posterior <P(h_j = 1 | v)>_data equals the model's marginal E_model[h_j], the
adaptive prior's fixed point. Everything here is exact: log Z by enumeration, so every log-likelihood and every
prior gap is a fact, not an estimate.

Data: scikit-learn's 8x8 digits (pixels / 16 > 0.5; 64 visible, the first 1,437 images for training and the
other 360 for testing) and mnist-10k (pixels > 0.5; 784 visible, 8,000 and 2,000), 16 hidden units each.

Arms, per data set and seed:
  exact, full batch          the exact likelihood and gradient on all training images, minimised by L-BFGS (at
                             most STEPS iterations): the optimum the approximations aim at
  exact, full batch, fixed   the same with the hidden biases kept at 0 (adaptive_prior=False)
  exact / CD-1 / CD-10 / PCD-1, minibatch
                             batch 100, Adam 0.01, then 0.001 for the last 30% of about UPDATES updates (whole
                             epochs): the same updates, with the negative phase exact or estimated by Gibbs sampling

Each is measured by its exact mean log-likelihood on the training and test images, and by the largest prior gap
max_j |<P(h_j = 1 | v)>_data - E_model[h_j]| on the training images.

    python examples/rbm_exact.py             # digits 3 seeds, mnist-10k 1 seed (about 40 minutes on two cores)
    python examples/rbm_exact.py --quick     # seconds (CI)

Writes OUT/summary.md, OUT/results.json and OUT/exact_training.png (the prior gap and the log-likelihood during
full-batch exact training).
"""

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import refvae
from rbm import BernoulliRBM
from refvae.cli import markdown_cell, use_backend_or_exit
from refvae.plots import save_figure

GAP_TARGET = 0.005
MINIBATCH_ARMS = {"exact, minibatch": dict(negative_phase="exact"),
                  "CD-1": dict(persistent=False, k=1), "CD-10": dict(persistent=False, k=10),
                  "PCD-1": dict(persistent=True, k=1)}
FULL_BATCH_ARMS = {"exact, full batch": True, "exact, full batch, fixed hidden biases": False}   # adaptive prior?
ALL_ARMS = (*FULL_BATCH_ARMS, *MINIBATCH_ARMS)


def load(name, quick):
    """(train, test) binary float64 host arrays (n, n_visible)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        X = (load_digits().data / 16.0 > 0.5).astype(np.float64)
        train, test = X[:1437], X[1437:]
    else:
        train, test = refvae.datasets.load("mnist-10k")
        train, test = (train > 0.5).astype(np.float64), (test > 0.5).astype(np.float64)
    if quick:
        train, test = train[:200], test[:100]
    return train, test


def measure(model, train, test):
    """Exact mean log-likelihoods (train, test) and the largest prior gap on the training images."""
    xp = model.xp
    log_z = model.log_partition("exact")
    gap = xp.max(xp.abs(model.aggregate_posterior(train) - model.hidden_marginal("exact")))
    return {"train_log_likelihood": float(xp.mean(model.log_likelihood(train, log_z))),
            "test_log_likelihood": float(xp.mean(model.log_likelihood(test, log_z))),
            "prior_gap": float(gap)}


def learning_rate(progress):
    """0.01, then 0.001 for the last 30% of training (``progress`` in [0, 1))."""
    return 0.01 if progress < 0.7 else 0.001


def full_batch(train, hidden, steps, seed, adaptive_prior=True):
    """Exact full-batch maximum likelihood by L-BFGS (scipy) on the exact -mean log P(v) and its exact gradient.

    Returns (model, curve of (evaluation, mean log-likelihood, prior gap), the evaluation after which the gap
    stayed below GAP_TARGET or None). With trained hidden biases the prior gap is max |grads["c"]|, which the
    optimiser drives to zero; with fixed ones it is measured, not optimised.
    """
    from scipy.optimize import minimize

    B = refvae.get_backend()
    X = B.asarray(train)
    model = BernoulliRBM(X.shape[1], hidden, seed=seed, dtype="float64", negative_phase="exact",
                         adaptive_prior=adaptive_prior)
    model.init_visible_bias(X)
    names = list(model.params)
    shapes = {k: tuple(model.params[k].shape) for k in names}
    sizes = [int(np.prod(shapes[k])) for k in names]
    curve = []

    def unflatten(theta):
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        return {k: part.reshape(shapes[k]) for k, part in zip(names, parts)}

    def nll_and_grad(theta):
        model.set_params(unflatten(theta))                     # host -> device: the optimiser lives on the host
        nll, grads = model.loss_and_grads(X)                   # the exact -mean log P(v) and its gradient
        curve.append((len(curve), -nll, model.last_terms["prior_gap"]))
        return nll, np.concatenate([B.to_numpy(grads[k]).ravel() for k in names])

    theta0 = np.concatenate([B.to_numpy(model.params[k]).ravel() for k in names])
    result = minimize(nll_and_grad, theta0, jac=True, method="L-BFGS-B",
                      options={"maxiter": steps, "maxfun": 2 * steps, "gtol": 1e-9, "ftol": 1e-15})
    model.set_params(unflatten(result.x))
    reached = None
    for evaluation, _, gap in curve:
        reached = None if gap >= GAP_TARGET else (evaluation if reached is None else reached)
    return model, curve, reached


def minibatch(train, hidden, epochs, seed, **options):
    """Minibatch training (batch 100) with the learning rates of ``learning_rate`` over the epochs."""
    B = refvae.get_backend()
    X = B.asarray(train)
    model = BernoulliRBM(X.shape[1], hidden, seed=seed, **options)
    model.init_visible_bias(X)
    opt = refvae.Adam(learning_rate(0.0))

    def schedule(model, history):
        opt.lr = learning_rate(len(history["epoch"]) / epochs)

    refvae.fit(model, X, epochs=epochs, batch_size=100, optimizer=opt, seed=seed, progress=False,
               callbacks=[schedule])
    return model


def plot_curves(results, path):
    names = list(results)
    fig = Figure(figsize=(10.0, 3.4 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for (ax_gap, ax_ll), name in zip(axes, names):
        for seed, run in enumerate(results[name]["full_batch_curves"]):
            for arm, colour in (("adaptive", "tab:blue"), ("fixed", "tab:orange")):
                if arm not in run:              # an arm left out with --arms
                    continue
                steps, ll, gap = zip(*run[arm])
                label = f"hidden biases {'trained' if arm == 'adaptive' else 'fixed at 0'}" if seed == 0 else None
                ax_gap.plot(steps, gap, color=colour, lw=1, label=label)
                ax_ll.plot(steps, ll, color=colour, lw=1, label=label)
        ax_gap.axhline(GAP_TARGET, color="k", ls="--", lw=1, label=f"{GAP_TARGET}")
        ax_gap.set_yscale("log")
        ax_gap.set_title(f"{name}: max_j |<P(h_j|v)>_data - E_model[h_j]|", fontsize=9)
        ax_ll.set_title(f"{name}: exact mean log-likelihood, training images", fontsize=9)
        for ax in (ax_gap, ax_ll):
            ax.set_xlabel("L-BFGS function evaluation")
            ax.grid(alpha=0.3)
        ax_gap.legend(fontsize=8)
        lls = [ll for run in results[name]["full_batch_curves"] for arm in run.values() for _, ll, _ in arm]
        if not lls:
            continue
        top = max(lls)
        ax_ll.set_ylim(min(float(np.quantile(lls, 0.1)), top - 3.0) - 0.5, top + 0.5)   # the approach, not the start
    return save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3, help="seeds on the digits")
    parser.add_argument("--mnist-seeds", type=int, default=1, help="seeds on mnist-10k")
    parser.add_argument("--first-seed", type=int, default=0, help="the seeds are FIRST_SEED, FIRST_SEED + 1, ...")
    parser.add_argument("--arms", nargs="+", default=list(ALL_ARMS), choices=list(ALL_ARMS), metavar="ARM",
                        help="the arms to run (default: all): " + "; ".join(ALL_ARMS))
    parser.add_argument("--steps", type=int, default=2000, help="most L-BFGS iterations of exact training")
    parser.add_argument("--updates", type=int, default=1500, help="updates of minibatch training (whole epochs)")
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist-10k"], choices=["digits", "mnist-10k"])
    parser.add_argument("--out", default="runs/rbm_exact")
    args = parser.parse_args(argv)
    use_backend_or_exit(parser, args.backend)
    B = refvae.get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps, updates, hidden = (40, 4, 4) if args.quick else (args.steps, args.updates, args.hidden)

    results = {}
    for name in args.datasets:
        if name == "digits" and importlib.util.find_spec("sklearn") is None:
            print("digits skipped: scikit-learn is not installed (pip install scikit-learn)")
            continue
        train, test = load(name, args.quick)
        seeds = 1 if args.quick else args.mnist_seeds if name == "mnist-10k" else args.seeds
        epochs = max(1, round(updates / -(-train.shape[0] // 100)))
        rows = {arm: [] for arm in ALL_ARMS if arm in args.arms}
        curves = []
        for seed in range(args.first_seed, args.first_seed + seeds):
            runs = {}
            for arm, adaptive in FULL_BATCH_ARMS.items():
                if arm not in args.arms:
                    continue
                t0 = time.perf_counter()
                model, curve, reached = full_batch(train, hidden, steps, seed, adaptive_prior=adaptive)
                rows[arm].append({**measure(model, B.asarray(train), B.asarray(test)), "gap_reached_at": reached,
                                  "seconds": time.perf_counter() - t0, "seed": seed})
                runs["adaptive" if adaptive else "fixed"] = curve
                print(f"{name}, seed {seed}, {arm}: {rows[arm][-1]}")
            curves.append(runs)
            for arm, options in MINIBATCH_ARMS.items():
                if arm not in args.arms:
                    continue
                t0 = time.perf_counter()
                model = minibatch(train, hidden, epochs, seed, **options)
                rows[arm].append({**measure(model, B.asarray(train), B.asarray(test)),
                                  "seconds": time.perf_counter() - t0, "seed": seed})
                print(f"{name}, seed {seed}, {arm}: {rows[arm][-1]}")
        results[name] = {"n_visible": train.shape[1], "n_hidden": hidden, "n_train": train.shape[0],
                         "n_test": test.shape[0], "seeds": seeds, "first_seed": args.first_seed, "epochs": epochs,
                         "arms": rows,
                         "full_batch_curves": curves}

    plot_curves(results, out / "exact_training.png")
    (out / "results.json").write_text(json.dumps({"steps": steps, "updates": updates, "results": results}, indent=1))
    lines = ["# The RBM's adaptive prior at the optimum: exact training against CD and PCD", "",
             ("Quick smoke run (tiny data, few steps: not evidence). " if args.quick else "")
             + f"{hidden} hidden units, backend {B.name}. Full batch: L-BFGS on the exact "
             f"likelihood and gradient, at most {steps} iterations, float64. Minibatch: about {updates} updates of "
             "batch 100 (whole epochs), Adam 0.01 then 0.001 for the last 30%, float32. Log-likelihoods are exact (log Z by enumeration), "
             "nats per image, mean ± s.d. over seeds; the prior gap is max_j |<P(h_j = 1 | v)>_data − E_model[h_j]| "
             f"on the training images; 'gap below {GAP_TARGET} from evaluation' is the L-BFGS function evaluation "
             "after which it stayed below.",
             ""]
    for name, r in results.items():
        lines += [f"## {name} ({r['n_visible']}-{r['n_hidden']}, {r['n_train']} training and {r['n_test']} test "
                  f"images; seeds {r['first_seed']} to {r['first_seed'] + r['seeds'] - 1}; minibatch arms "
                  f"{r['epochs']} epochs)", "",
                  "| arm | train log-likelihood | test log-likelihood | prior gap (largest over seeds) | "
                  f"gap below {GAP_TARGET} from evaluation | seconds per run |", "|---|---|---|---|---|---|"]
        for arm, runs in r["arms"].items():
            tr = np.array([x["train_log_likelihood"] for x in runs])
            te = np.array([x["test_log_likelihood"] for x in runs])
            reached = [x.get("gap_reached_at") for x in runs]
            reached_text = "—" if "full batch" not in arm else markdown_cell(", ".join(
                "never" if s is None else str(s) for s in reached))
            lines.append(f"| {arm} | {tr.mean():.3f} ± {tr.std():.3f} | {te.mean():.3f} ± {te.std():.3f} | "
                         f"{max(x['prior_gap'] for x in runs):.4f} | {reached_text} | "
                         f"{np.mean([x['seconds'] for x in runs]):.0f} |")
        if not all(arm in r["arms"] for arm in FULL_BATCH_ARMS):
            continue
        ad, fx = r["arms"]["exact, full batch"], r["arms"]["exact, full batch, fixed hidden biases"]
        d_train = np.array([a["train_log_likelihood"] - f["train_log_likelihood"] for a, f in zip(ad, fx)])
        d_test = np.array([a["test_log_likelihood"] - f["test_log_likelihood"] for a, f in zip(ad, fx)])
        lines += ["", f"Trained minus fixed hidden biases under exact full-batch training, per seed: train "
                      f"{', '.join(f'{d:+.3f}' for d in d_train)}; test {', '.join(f'{d:+.3f}' for d in d_test)} nats.",
                  ""]
    lines += ["![exact training](exact_training.png)", ""]
    (out / "summary.md").write_text("\n".join(lines))
    print(f"wrote {out / 'summary.md'}, results.json and exact_training.png")
    return results


if __name__ == "__main__":
    main()
