"""A linear Gaussian VAE is pPCA or factor analysis: training reaches the closed-form maximum likelihood, and the
aggregate posterior becomes the prior.

For each data set, a GaussianVAE with hidden=() and likelihood="gaussian" (decoder_variance="shared": pPCA;
"per-dimension": factor analysis) is trained by refvae.fit, and set against the closed forms of
refvae/vae/linear.py:
  synthetic   4,000 points from a known linear model, d = 10, q = 3 (pPCA and factor analysis)
  digits      scikit-learn's 1,797 8x8 digits, the pixels that vary (61), / 16, q = 10 (pPCA and factor analysis;
              skipped when scikit-learn is not installed)
  mnist-10k   the 8,000 training images, q = 20 (pPCA)

    python examples/linear_vae.py              # about ten minutes on two cores
    python examples/linear_vae.py --quick      # seconds (CI)

Every run gets the same number of optimiser steps (--steps, batch 100) and the learning rates of SCHEDULE. The
gap between the maximum log-likelihood and the ELBO is split into its three parts (linear.gap_decomposition:
the decoder, the shape of the exact posterior, the encoder).

Then two runs on the synthetic data where a condition fails: too few latent dimensions (q = 2 for 3 directions),
and a fixed decoder variance above the third direction's variance (its latent unit then has nothing to explain).

Then the contrast: the same report for nonlinear Bernoulli VAEs on mnist-10k (dynamic binarisation, Adam 1e-3,
batch 128, 100 epochs), refvae's default 784-400-20 and three variations that each change one capacity (larger
networks, a smaller or a larger latent space), measured after epochs 1, 3, 10, 30 and 100.

Writes OUT/elbo_curves.png (the ELBO, computed in closed form, per epoch against the maximum log-likelihood),
OUT/aggregate_<run>.png (the aggregate posterior against the prior), OUT/directions.png (the decoder's columns
against the principal directions: cosines of the principal angles between the two subspaces),
OUT/contrast.png (the nonlinear VAEs' mismatch and inference gap over training), OUT/results.json and
OUT/summary.md.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import refvae
from refvae.cli import markdown_cell, use_backend_or_exit
from refvae.plots import save_figure
from refvae.vae import evaluate_vae, linear
from refvae.vae import plots as vae_plots


def datasets(quick):
    """[(name, X (n, d) float64, q)]."""
    rng = np.random.default_rng(0)
    n, d, q = (500, 10, 3) if quick else (4000, 10, 3)
    W = rng.normal(size=(d, q))
    out = [("synthetic", rng.normal(size=(n, q)) @ W.T + rng.normal(size=(n, d)) * np.sqrt(rng.uniform(0.1, 0.5, d))
            + rng.normal(size=d), q)]
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("digits skipped: scikit-learn is not installed (pip install scikit-learn)")
    else:
        X = load_digits().data[:300 if quick else None] / 16.0
        out.append(("digits", X[:, X.std(axis=0) > 0], 10))        # the pixels that vary
    train, _ = refvae.datasets.load("mnist-10k")
    out.append(("mnist-10k", train[:500].astype(np.float64) if quick else train.astype(np.float64), 5 if quick else 20))
    return out


def principal_cosines(W, X, q):
    """Cosines of the principal angles between span(W) and the top-q principal directions of X, decreasing."""
    _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    qa, _ = np.linalg.qr(W)
    return np.clip(np.linalg.svd(qa.T @ vt[:q].T, compute_uv=False), 0.0, 1.0)


SCHEDULE = [(0.4, 1e-2), (0.3, 1e-3), (0.2, 2e-4), (0.1, 5e-5)]   # (fraction of the epochs, Adam learning rate)
BATCH = 100


def epochs_for(n, steps):
    """The number of epochs of batch 100 that makes about ``steps`` optimiser steps on n examples."""
    return max(len(SCHEDULE), round(steps / -(-n // BATCH)))


def learning_rate(epoch, epochs):
    """The schedule's learning rate in this epoch (0-based)."""
    start = 0.0
    for fraction, lr in SCHEDULE:
        start += fraction
        if epoch < round(start * epochs):
            return lr
    return SCHEDULE[-1][1]


def train(X, q, decoder_variance, epochs, seed):
    """The trained VAE and its closed-form ELBO after every epoch (learning rates from SCHEDULE)."""
    B = refvae.get_backend()
    vae = refvae.GaussianVAE(X.shape[1], q, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance,
                             seed=seed, dtype="float64")
    opt = refvae.Adam(SCHEDULE[0][1])
    Xd = B.asarray(X)
    curve = []
    for epoch in range(epochs):
        opt.lr = learning_rate(epoch, epochs)
        refvae.fit(vae, Xd, epochs=1, batch_size=BATCH, optimizer=opt, seed=epoch, progress=False)
        curve.append(float(B.xp.mean(linear.analytic_elbo(vae, Xd))))
    return vae, curve


def linear_result(vae, X, q, best, curve):
    """The numbers one linear run reports (floats and lists, for JSON)."""
    B = refvae.get_backend()
    aggregate = refvae.aggregate_posterior(vae, X)
    report = refvae.prior_mismatch(aggregate)
    mixture = refvae.aggregate_kl(aggregate, samples=2000, seed=2)
    gaps = linear.gap_decomposition(vae, X, best)
    assert abs(gaps["elbo"] - curve[-1]) < 1e-9                       # the curve's last point is this ELBO
    return {"d": X.shape[1], "q": q, "n": X.shape[0], "max_log_likelihood": gaps["max_log_likelihood"],
            "elbo": gaps["elbo"], "gap": gaps["total"], "gap_decoder": gaps["decoder"],
            "gap_posterior_shape": gaps["posterior_shape"], "gap_encoder": gaps["encoder"],
            "iw_log_likelihood": float(B.xp.mean(vae.log_likelihood(X, k=100, seed=1))),
            "mismatch_kl": report.kl_diag, "mismatch_kl_full": report.kl_full,
            "mixture_kl": mixture.kl, "mixture_kl_se": mixture.standard_error,
            "active_units": report.n_active, "findings": list(report.findings),
            "aggregate_mean_max": float(np.max(np.abs(report.mean))),
            "aggregate_var_max": float(np.max(np.abs(report.var - 1.0))),
            "principal_cosines": principal_cosines(B.to_numpy(vae.params["decoder.mean.W"]).T, X, q).tolist(),
            "elbo_curve": curve}, report


CONTRAST = [("784-400-20 (refvae's default)", (400,), 20), ("784-1000-1000-20 (larger networks)", (1000, 1000), 20),
            ("784-400-5 (smaller latent space)", (400,), 5), ("784-400-50 (larger latent space)", (400,), 50)]
CHECKPOINTS = (1, 3, 10, 30, 100)


def nonlinear_contrast(quick, seed, out):
    """Train the Bernoulli VAEs of CONTRAST on mnist-10k; {run: {"checkpoints": [{epoch: ..., numbers}]}}."""
    B = refvae.get_backend()
    train_x, test_x = refvae.datasets.load("mnist-10k")
    runs, checkpoints = CONTRAST, CHECKPOINTS
    if quick:
        train_x, test_x = train_x[:300], test_x[:100]
        runs, checkpoints = [("784-16-4 (quick)", (16,), 4)], (1, 2)
    train_d = B.asarray(train_x)
    train_fixed = refvae.evaluation.binarize_fixed(train_d)           # one fixed binarisation for every measurement
    n_eval = min(2000, train_x.shape[0])                             # the ELBO and IW on the first 2000 of them
    results = {}
    for run, hidden, z_dim in runs:
        vae = refvae.GaussianVAE(784, z_dim, hidden=hidden, seed=seed)
        opt = refvae.Adam(1e-3)
        rows = []
        for epoch in range(1, checkpoints[-1] + 1):
            refvae.fit(vae, train_d, epochs=1, batch_size=128, optimizer=opt, seed=1000 * seed + epoch, binarize="dynamic",
                       progress=False)
            if epoch not in checkpoints:
                continue
            aggregate = refvae.aggregate_posterior(vae, train_fixed)
            report = refvae.prior_mismatch(aggregate)
            mixture = refvae.aggregate_kl(aggregate, samples=2000, seed=2)
            on_train = evaluate_vae(vae, train_fixed[:n_eval, :], k=100, binarize=False)
            on_test = evaluate_vae(vae, test_x[:n_eval], k=100)
            rows.append({"epoch": epoch, "elbo": on_train["elbo"], "iw_log_likelihood": on_train["log_likelihood"],
                         "kl_term": on_train["kl"], "test_elbo": on_test["elbo"],
                         "test_iw_log_likelihood": on_test["log_likelihood"],
                         "mismatch_kl": report.kl_diag, "mismatch_kl_full": report.kl_full,
                         "mixture_kl": mixture.kl, "mixture_kl_se": mixture.standard_error,
                         "active_units": report.n_active, "z_dim": z_dim, "n": int(train_fixed.shape[0])})
            print(f"{run}, epoch {epoch}: ELBO {on_train['elbo']:.2f}, IW {on_train['log_likelihood']:.2f}, "
                  f"test ELBO {on_test['elbo']:.2f}, mismatch KL {report.kl_diag:.3f} (full {report.kl_full:.3f}), "
                  f"mixture KL {mixture.kl:.2f} ± {mixture.standard_error:.2f}, active {report.n_active}/{z_dim}")
        results[run] = {"hidden": list(hidden), "z_dim": z_dim, "checkpoints": rows,
                        "findings": list(report.findings)}
        if run == runs[0][0]:
            vae_plots.plot_aggregate_vs_prior(report, out / "aggregate_nonlinear_mnist-10k.png",
                                              title=f"Aggregate posterior against the prior: Bernoulli VAE {run}, "
                                                    f"epoch {checkpoints[-1]}")
    return results


def plot_contrast(contrast, linear_reference, path):
    """The nonlinear runs' mismatch (moment-matched, full covariance) and inference gap (IW - ELBO) per
    checkpoint, with the linear VAE on mnist-10k as a reference line."""
    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    ax_kl, ax_gap = fig.subplots(1, 2)
    for run, r in contrast.items():
        epochs = [c["epoch"] for c in r["checkpoints"]]
        ax_kl.plot(epochs, [c["mismatch_kl_full"] for c in r["checkpoints"]], "o-", label=run)
        ax_gap.plot(epochs, [c["iw_log_likelihood"] - c["elbo"] for c in r["checkpoints"]], "o-", label=run)
    if linear_reference is not None:
        ax_kl.axhline(linear_reference["mismatch_kl_full"], color="k", ls="--", lw=1, label="linear VAE (pPCA)")
        ax_gap.axhline(linear_reference["iw_log_likelihood"] - linear_reference["elbo"], color="k", ls="--", lw=1,
                       label="linear VAE (pPCA)")
    for ax, title in [(ax_kl, "mismatch: KL(moment-matched aggregate || N(0, I))"),
                      (ax_gap, "inference gap: IW (k = 100) − ELBO, training images")]:
        ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    ax_kl.set_yscale("log")
    ax_gap.legend(fontsize=7)
    return save_figure(fig, path)


def plot_directions(results, path):
    """Bars of the cosines of the principal angles between each run's decoder columns and its principal directions."""
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(results)
    for i, (run, r) in enumerate(results.items()):
        c = r["principal_cosines"]
        ax.bar(np.arange(len(c)) + i * width, c, width=width, label=run)
    n_angles = max(len(r["principal_cosines"]) for r in results.values())
    ax.set_xticks(np.arange(n_angles) + 0.4 - width / 2, [str(i + 1) for i in range(n_angles)])
    ax.set_xlabel("principal angle (largest cosine first)")
    ax.set_ylabel("cosine")
    ax.set_ylim(0, 1.05)
    ax.set_title("Decoder columns against the principal directions: 1 = the same subspace", fontsize=10)
    fig.legend(fontsize=7, ncol=3, loc="outside lower center")
    return save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=60000, help="optimiser steps per linear run (batch 100)")
    parser.add_argument("--no-contrast", action="store_true", help="skip the nonlinear VAEs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/linear_vae")
    args = parser.parse_args(argv)
    use_backend_or_exit(parser, args.backend)
    B = refvae.get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = 60 if args.quick else args.steps

    results = {}
    data = datasets(args.quick)
    for name, X, q in data:
        kinds = ["shared"] if name == "mnist-10k" else ["shared", "per-dimension"]
        for kind in kinds:
            run = f"{name}, {'pPCA' if kind == 'shared' else 'factor analysis'}"
            best = linear.ppca_ml(X, q) if kind == "shared" else linear.factor_analysis_em(X, q)
            vae, curve = train(X, q, kind, epochs_for(X.shape[0], steps), args.seed)
            results[run], report = linear_result(vae, X, q, best, curve)
            vae_plots.plot_aggregate_vs_prior(report, out / f"aggregate_{name}_{kind}.png",
                                              title=f"Aggregate posterior against the prior: {run}")
            r = results[run]
            print(f"{run}: max log-likelihood {r['max_log_likelihood']:.4f}, ELBO {r['elbo']:.4f} (gap {r['gap']:.4f}"
                  f" = decoder {r['gap_decoder']:.4f} + posterior shape {r['gap_posterior_shape']:.4f} + encoder "
                  f"{r['gap_encoder']:.4f}), IW {r['iw_log_likelihood']:.4f}, mismatch KL {r['mismatch_kl']:.4f} nats")

    # When a condition of the idea fails: too few latent dimensions, or a fixed decoder variance that is too large
    name, X, q = data[0]                                                   # the synthetic data (q = 3 directions)
    evals = np.sort(np.linalg.eigvalsh(np.cov(X.T, bias=True)))[::-1]
    too_large = float((evals[1] + evals[2]) / 2)                          # above the 3rd direction's variance
    failures = {f"{name}, pPCA, q = 2 (too few latent dimensions)": (2, "shared", None),
                f"{name}, fixed variance {too_large:.2f} (too large)": (3, too_large, too_large)}
    for run, (q_run, kind, fixed) in failures.items():
        best = linear.ppca_ml(X, q_run, noise_variance=fixed)
        vae, curve = train(X, q_run, kind, epochs_for(X.shape[0], steps), args.seed)
        results[run], report = linear_result(vae, X, q_run, best, curve)
        results[run]["failure"] = True
        vae_plots.plot_aggregate_vs_prior(report, out / f"aggregate_failure_q{q_run}_{'fixed' if fixed else 'shared'}.png",
                                          title=f"Aggregate posterior against the prior: {run}")
        print(f"{run}: max log-likelihood {results[run]['max_log_likelihood']:.4f} (the best this model can do), "
              f"ELBO {curve[-1]:.4f}, active units {report.n_active} of {q_run}, mismatch KL {report.kl_diag:.4f} nats")
    best_full = results.get(f"{name}, pPCA", {}).get("max_log_likelihood")

    contrast = {} if args.no_contrast else nonlinear_contrast(args.quick, args.seed, out)
    if contrast:
        plot_contrast(contrast, results.get("mnist-10k, pPCA"), out / "contrast.png")

    fig = Figure(figsize=(7.5, 2.6 * len(results)), layout="constrained")
    for ax, (run, r) in zip(fig.subplots(len(results), 1, squeeze=False)[:, 0], results.items()):
        ax.plot(range(1, len(r["elbo_curve"]) + 1), r["elbo_curve"], color="tab:blue", label="ELBO (closed form)")
        ax.axhline(r["max_log_likelihood"], color="k", ls="--", lw=1, label="maximum log-likelihood")
        low = r["max_log_likelihood"] - max(1.0, 5 * abs(r["gap"]))
        ax.set_ylim(low, r["max_log_likelihood"] + 0.1 * (r["max_log_likelihood"] - low))
        ax.set_title(f"{run}: final gap {r['gap']:.4f} nats per example", fontsize=10)
        ax.set_ylabel("nats per example")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    ax.set_xlabel("epoch")
    save_figure(fig, out / "elbo_curves.png")

    plot_directions(results, out / "directions.png")

    (out / "results.json").write_text(json.dumps({"linear": results, "nonlinear": contrast}, indent=1))
    schedule = ", then ".join(f"{lr:g} for {fraction:.0%}" for fraction, lr in SCHEDULE)
    lines = ["# Linear Gaussian VAE: pPCA and factor analysis", "",
             ("Quick smoke run (tiny data, few steps: not evidence). " if args.quick else "")
             + f"About {steps} optimiser steps per run (batch {BATCH}), Adam {schedule} of the epochs, float64, "
             f"backend {B.name}. The ELBO is computed in closed form (`refvae.vae.linear.analytic_elbo`); the maximum "
             "log-likelihood from `ppca_ml` or `factor_analysis_em`; the gap is split by "
             "`linear.gap_decomposition` into the decoder's distance from the maximum likelihood, the exact "
             "posterior's departure from a diagonal Gaussian (decoder columns not yet orthogonal), and the encoder's "
             "distance from the best encoder for its decoder.", "",
             "| run | d | q | epochs | max log-likelihood | ELBO | gap | = decoder | + posterior shape | + encoder "
             "| IW (k = 100) | mismatch KL | smallest principal cosine |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        if r.get("failure"):
            continue
        lines.append(f"| {run} | {r['d']} | {r['q']} | {len(r['elbo_curve'])} | {r['max_log_likelihood']:.4f} | "
                     f"{r['elbo']:.4f} | {r['gap']:.4f} | {r['gap_decoder']:.4f} | {r['gap_posterior_shape']:.4f} | "
                     f"{r['gap_encoder']:.4f} | {r['iw_log_likelihood']:.4f} | {r['mismatch_kl']:.4f} | "
                     f"{min(r['principal_cosines']):.4f} |")
    lines += ["", "The aggregate posterior's moments: largest |mean| and largest |variance − 1| over the latent "
                  "dimensions; the mismatch KL of the moment-matched Gaussian (diagonal, full covariance) and the KL "
                  "of the exact mixture over the n training points (`refvae.aggregate_kl`, ± its Monte Carlo "
                  "standard error; at least the mean KL term − log n, so large for narrow posteriors even at the "
                  "optimum).", "",
              "| run | largest \|mean\| | largest \|var − 1\| | mismatch KL (diagonal) | (full) | mixture KL | "
              "log n |", "|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        if not r.get("failure"):
            lines.append(f"| {run} | {r['aggregate_mean_max']:.3f} | {r['aggregate_var_max']:.3f} | "
                         f"{r['mismatch_kl']:.4f} | {r['mismatch_kl_full']:.4f} | {r['mixture_kl']:.2f} ± "
                         f"{r['mixture_kl_se']:.2f} | {np.log(r['n']):.2f} |")
    lines += ["", "## When a condition fails", "",
              "| run | best log-likelihood of this model | ELBO | gap | active units | mismatch KL | the report says |",
              "|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        if r.get("failure"):
            lines.append(f"| {run} | {r['max_log_likelihood']:.4f} | {r['elbo']:.4f} | {r['gap']:.4f} | "
                         f"{r['active_units']} of {r['q']} | {r['mismatch_kl']:.4f} | "
                         f"{markdown_cell('; '.join(r['findings'][:2]))} |")
    if best_full is not None:
        lines += ["", f"For comparison, the synthetic data's maximum log-likelihood with q = 3 and a learned variance "
                      f"is {best_full:.4f}."]
    worst = max((r for r in results.values() if not r.get("failure")), key=lambda r: r["gap"])
    lines += ["", f"Largest gap: {worst['gap']:.4f} nats per example"
              + (" (under 0.005: the ELBO reached the maximum likelihood)" if worst["gap"] < 0.005 else
                 " (not under 0.005: more steps, or a smaller final learning rate)") + ".", ""]
    if contrast:
        lines += ["## The contrast: nonlinear Bernoulli VAEs on mnist-10k", "",
                  "Dynamic binarisation, Adam 1e-3, batch 128. Measured on the training images (one fixed "
                  "binarisation; the ELBO and IW on the first 2000 of them, the aggregate on all), and the test ELBO "
                  "on 2000 test images. Inference gap = IW − ELBO, a lower bound on the mean KL(q(z|x) ‖ p(z|x)).",
                  "", "| run | epoch | ELBO | IW (k = 100) | inference gap | test ELBO | KL term | mismatch KL "
                  "(diagonal) | (full) | mixture KL | active units |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for run, r in contrast.items():
            for c in r["checkpoints"]:
                lines.append(f"| {run} | {c['epoch']} | {c['elbo']:.2f} | {c['iw_log_likelihood']:.2f} | "
                             f"{c['iw_log_likelihood'] - c['elbo']:.2f} | {c['test_elbo']:.2f} | {c['kl_term']:.2f} | "
                             f"{c['mismatch_kl']:.3f} | {c['mismatch_kl_full']:.3f} | {c['mixture_kl']:.2f} ± "
                             f"{c['mixture_kl_se']:.2f} | {c['active_units']} of {c['z_dim']} |")
        lines += ["", "What the report says about each at the last checkpoint:", ""]
        lines += [f"- {run}: {markdown_cell('; '.join(r['findings']))}" for run, r in contrast.items()]
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    print(f"wrote {out / 'summary.md'}, results.json and the figures")
    return {"linear": results, "nonlinear": contrast}


if __name__ == "__main__":
    main()
