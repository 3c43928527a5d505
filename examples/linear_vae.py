"""A linear Gaussian VAE is pPCA or factor analysis: training reaches the closed-form maximum likelihood, and the
aggregate posterior becomes the prior.

For each data set, a GaussianVAE with hidden=() and likelihood="gaussian" (decoder_variance="shared": pPCA;
"per-dimension": factor analysis) is trained by refvae.fit, and set against the closed forms of
refvae/vae/linear.py:
  synthetic   4,000 points from a known linear model, d = 10, q = 3 (pPCA and factor analysis)
  digits      scikit-learn's 1,797 8x8 digits, the pixels that vary (61), / 16, q = 10 (pPCA and factor analysis;
              skipped when scikit-learn is not installed)
  mnist-10k   the 8,000 training images, q = 20 (pPCA)

    python examples/linear_vae.py              # a minute or two
    python examples/linear_vae.py --quick      # seconds (CI)

Then two runs on the synthetic data where a condition fails: too few latent dimensions (q = 2 for 3 directions),
and a fixed decoder variance above the third direction's variance (its latent unit then has nothing to explain).

Writes OUT/elbo_curves.png (the ELBO, computed in closed form, per epoch against the maximum log-likelihood),
OUT/aggregate_<run>.png (the aggregate posterior against the prior), OUT/directions.png (the decoder's columns
against the principal directions: cosines of the principal angles between the two subspaces), OUT/results.json
and OUT/summary.md.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import refvae
from refvae.cli import markdown_cell, use_backend_or_exit
from refvae.plots import save_figure
from refvae.vae import linear
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


def train(X, q, decoder_variance, epochs, seed):
    """The trained VAE and its closed-form ELBO after every epoch (1e-2, then 1e-3, then 2e-4)."""
    B = refvae.get_backend()
    vae = refvae.GaussianVAE(X.shape[1], q, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance,
                             seed=seed, dtype="float64")
    opt = refvae.Adam(1e-2)
    Xd = B.asarray(X)
    curve = []
    for epoch in range(epochs):
        opt.lr = 1e-2 if epoch < epochs // 2 else 1e-3 if epoch < 5 * epochs // 6 else 2e-4
        refvae.fit(vae, Xd, epochs=1, batch_size=100, optimizer=opt, seed=epoch, progress=False)
        curve.append(float(B.xp.mean(linear.analytic_elbo(vae, Xd))))
    return vae, curve


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/linear_vae")
    args = parser.parse_args(argv)
    use_backend_or_exit(parser, args.backend)
    B = refvae.get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = 12 if args.quick else args.epochs

    results = {}
    for name, X, q in datasets(args.quick):
        kinds = ["shared"] if name == "mnist-10k" else ["shared", "per-dimension"]
        for kind in kinds:
            run = f"{name}, {'pPCA' if kind == 'shared' else 'factor analysis'}"
            solution = linear.ppca_ml(X, q) if kind == "shared" else linear.factor_analysis_em(X, q)
            max_ll = float(B.xp.mean(linear.exact_log_likelihood(solution, X)))
            vae, curve = train(X, q, kind, epochs, args.seed)
            report = refvae.prior_mismatch(vae, X)
            iw = float(B.xp.mean(vae.log_likelihood(X, k=100, seed=1)))
            W_dec = B.to_numpy(vae.params["decoder.mean.W"]).T                       # (d, q)
            results[run] = {"d": X.shape[1], "q": q, "n": X.shape[0], "max_log_likelihood": max_ll,
                            "elbo": curve[-1], "gap": max_ll - curve[-1], "iw_log_likelihood": iw,
                            "mismatch_kl": report.kl_diag, "active_units": report.n_active,
                            "aggregate_mean_max": float(np.max(np.abs(report.mean))),
                            "aggregate_var_max": float(np.max(np.abs(report.var - 1.0))),
                            "principal_cosines": principal_cosines(W_dec, X, q).tolist(), "elbo_curve": curve}
            vae_plots.plot_aggregate_vs_prior(report, out / f"aggregate_{run.split(',')[0]}_{kind}.png",
                                              title=f"Aggregate posterior against the prior: {run}")
            print(f"{run}: max log-likelihood {max_ll:.4f}, ELBO {curve[-1]:.4f} (gap {max_ll - curve[-1]:.4f}), "
                  f"IW {iw:.4f}, mismatch KL {report.kl_diag:.4f} nats")

    # When a condition of the idea fails: too few latent dimensions, or a fixed decoder variance that is too large
    name, X, q = datasets(args.quick)[0]                                  # the synthetic data (q = 3 directions)
    evals = np.sort(np.linalg.eigvalsh(np.cov(X.T, bias=True)))[::-1]
    too_large = float((evals[1] + evals[2]) / 2)                          # above the 3rd direction's variance
    failures = {f"{name}, pPCA, q = 2 (too few latent dimensions)": (2, "shared", None),
                f"{name}, fixed variance {too_large:.2f} (too large)": (3, too_large, too_large)}
    for run, (q_run, kind, fixed) in failures.items():
        solution = linear.ppca_ml(X, q_run, noise_variance=fixed)
        max_ll = float(B.xp.mean(linear.exact_log_likelihood(solution, X)))
        vae, curve = train(X, q_run, kind, epochs, args.seed)
        report = refvae.prior_mismatch(vae, X)
        results[run] = {"d": X.shape[1], "q": q_run, "n": X.shape[0], "max_log_likelihood": max_ll,
                        "elbo": curve[-1], "gap": max_ll - curve[-1],
                        "iw_log_likelihood": float(B.xp.mean(vae.log_likelihood(X, k=100, seed=1))),
                        "mismatch_kl": report.kl_diag, "active_units": report.n_active,
                        "aggregate_mean_max": float(np.max(np.abs(report.mean))),
                        "aggregate_var_max": float(np.max(np.abs(report.var - 1.0))),
                        "principal_cosines": principal_cosines(B.to_numpy(vae.params["decoder.mean.W"]).T, X,
                                                               q_run).tolist(),
                        "elbo_curve": curve, "findings": list(report.findings), "failure": True}
        vae_plots.plot_aggregate_vs_prior(report, out / f"aggregate_failure_q{q_run}_{'fixed' if fixed else 'shared'}.png",
                                          title=f"Aggregate posterior against the prior: {run}")
        print(f"{run}: max log-likelihood {max_ll:.4f} (the best this model can do), ELBO {curve[-1]:.4f}, "
              f"active units {report.n_active} of {q_run}, mismatch KL {report.kl_diag:.4f} nats")
    best_full = results.get(f"{name}, pPCA", {}).get("max_log_likelihood")

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

    fig = Figure(figsize=(7.5, 3.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(results)
    for i, (run, r) in enumerate(results.items()):
        c = r["principal_cosines"]
        ax.bar(np.arange(len(c)) + i * width, c, width=width, label=run)
    ax.set_xticks(range(max(len(r["principal_cosines"]) for r in results.values())))
    ax.set_xlabel("principal angle (largest cosine first)")
    ax.set_ylabel("cosine")
    ax.set_ylim(0, 1.05)
    ax.set_title("Decoder columns against the principal directions: 1 = the same subspace", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, out / "directions.png")

    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = ["# Linear Gaussian VAE: pPCA and factor analysis", "",
             ("Quick smoke run (tiny data, few epochs: not evidence). " if args.quick else "")
             + f"{epochs} epochs of Adam (1e-2, then 1e-3, then 2e-4), batch 100, float64, backend {B.name}. "
             "The ELBO is computed in closed form (`refvae.vae.linear.analytic_elbo`); the maximum log-likelihood "
             "from `ppca_ml` or `factor_analysis_em`.", "",
             "| run | d | q | max log-likelihood | ELBO | gap | IW (k = 100) | mismatch KL | largest \\|mean\\| "
             "| largest \\|var − 1\\| | smallest principal cosine |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        if r.get("failure"):
            continue
        lines.append(f"| {run} | {r['d']} | {r['q']} | {r['max_log_likelihood']:.4f} | {r['elbo']:.4f} | "
                     f"{r['gap']:.4f} | {r['iw_log_likelihood']:.4f} | {r['mismatch_kl']:.4f} | "
                     f"{r['aggregate_mean_max']:.3f} | {r['aggregate_var_max']:.3f} | "
                     f"{min(r['principal_cosines']):.4f} |")
    lines += ["", "## When a condition fails", "",
              "| run | best log-likelihood of this model | ELBO | gap | active units | mismatch KL | the report says |",
              "|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        if r.get("failure"):
            lines.append(f"| {run} | {r['max_log_likelihood']:.4f} | {r['elbo']:.4f} | {r['gap']:.4f} | "
                         f"{r['active_units']} of {r['q']} | {r['mismatch_kl']:.4f} | "
                         f"{markdown_cell(' '.join(r['findings'][:2]))} |")
    if best_full is not None:
        lines += ["", f"For comparison, the synthetic data's maximum log-likelihood with q = 3 and a learned variance "
                      f"is {best_full:.4f}."]
    worst = max((r for r in results.values() if not r.get("failure")), key=lambda r: r["gap"])
    lines += ["", f"Largest gap: {worst['gap']:.4f} nats per example"
              + (" (under 0.005: the ELBO reached the maximum likelihood)" if worst["gap"] < 0.005 else
                 " (not under 0.005: more epochs, or a smaller final learning rate)") + ".", ""]
    (out / "summary.md").write_text("\n".join(lines))
    print(f"wrote {out / 'summary.md'}, results.json and {2 + len(results)} figures")
    return results


if __name__ == "__main__":
    main()
