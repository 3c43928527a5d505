"""Benchmark: the two expensive evaluations, a VAE's importance-weighted log-likelihood and an RBM's AIS log Z.

    python benchmarks/bench_eval.py [--backend numpy|cupy] [--k 5000] [--betas 14500] [--chains 100]
                                    [--n-test N] [--compare-numpy] [--quick] [--json out.json]

Both models are trained on NumPy (the CPU) and then evaluated on the chosen backend, so that every backend
evaluates the same parameters; --compare-numpy evaluates them on NumPy too (IW on the first --compare-n-test
images, AIS in full) and tests that the two backends' estimates agree within their error bars (IW: the mean paired per-image difference within 3 standard errors;
AIS: the log Z difference within 3 standard errors of the difference, each from the AIS weights' spread).
(a) ``refvae.GaussianVAE(784, 20, hidden=(400,))`` trained for one epoch (batches of 128, Adam 1e-3, dynamic
binarisation) on mnist-10k's 8,000 training images, then ``model.log_likelihood(test_bin, k=5000, seed=0)`` on
the 2,000 test images binarised with ``refvae.evaluation.binarize_fixed``. Matrix products: the encoder once per
image (784x400, 400x20 twice), the decoder once per sample (20x400, 400x784); the samples are decoded in
chunks of min(k, 8192) * max(1, 8192 // k) rows, the shapes on which the matmul rate is measured.
(b) ``rbm.BernoulliRBM(784, 500)`` trained for one epoch of CD-1 (batches of 100, SGD 0.01, momentum 0.9) on the
training images binarised once (NumPy seed 0), then ``model.log_partition("ais", n_chains=100, betas=14500,
data=<those images>, return_bounds=True)``. Matrix products per temperature step: v W and h W^T for all chains
(100 x 784 x 500 each) and the matrix-vector products v b_A, v b (100 x 784 each); the matmul rate is measured
on the two matrix shapes.

Each evaluation is timed once (the device synchronised before and after), after its model's training epoch.
The FLOPs are those of the matrix products, counted from the shapes; the fraction is the achieved rate over
the matrix-multiply rate measured in this process on the same shapes (float32). --quick: tiny settings
(1,000 training images, 100 test images, k=100, 20 chains, 200 temperatures) for a smoke test.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import refvae
from common import machine_info, matmul_rate, thread_limit, timed, write_result
from rbm import BernoulliRBM

MAX_ROWS = 8192
AIS_VERDICT = {True: "agrees", False: "DISAGREES",
               None: "not decided: an AIS error bar is not trustworthy (lower bound -inf); see ais_spread.py"}   # GaussianVAE.log_likelihood's chunk size (passed explicitly)












def on_backend(model, B):
    """The same parameters (and state) as ``model``, rebuilt on backend ``B`` (through its checkpoint arrays)."""
    with refvae.use_backend(B.name):
        return type(model).from_checkpoint(model.checkpoint_arrays(), {"kind": type(model).__name__,
                                                                        "config": model.config})


def train_models(train, X_bin):
    """The two benchmark models, each trained for one epoch on NumPy (so every backend evaluates the same ones)."""
    with refvae.use_backend("numpy"):
        vae = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
        h = refvae.fit(vae, train, epochs=1, batch_size=128, optimizer=refvae.Adam(1e-3), binarize="dynamic",
                       progress=False)
        rbm = BernoulliRBM(784, 500, persistent=False, k=1, seed=0)
        h_rbm = refvae.fit(rbm, X_bin, epochs=1, batch_size=100, optimizer=refvae.SGD(0.01, momentum=0.9),
                           binarize=None, progress=False)
    return vae, rbm, h["seconds"][0], h_rbm["seconds"][0]


def evaluate(B, vae, rbm, test_bin, X_bin, k, chains, n_betas):
    """Per-image IW log-likelihoods (NumPy), their time, and AIS (log Z, lower, upper) with its time, on ``B``."""
    vae, rbm = on_backend(vae, B), on_backend(rbm, B)
    with refvae.use_backend(B.name):
        ll, t_ll = timed(B, lambda: B.to_numpy(vae.log_likelihood(test_bin, k=k, seed=0, max_rows=MAX_ROWS)))
        ais, t_ais = timed(B, lambda: rbm.log_partition("ais", n_chains=chains, betas=n_betas,
                                                        data=B.asarray(X_bin), return_bounds=True))
        rbm_ll = float(B.xp.mean(rbm.log_likelihood(test_bin, log_z=ais[0])))
    return ll, t_ll, ais, t_ais, rbm_ll


def ais_standard_error(log_z, upper):
    """The standard error of the AIS log Z estimate (delta method) from its +3-sd bound:
    upper = log(mean(w) + 3 sd(w)/sqrt(M)) + log Z_A, so se(log Z) ~ sd(w)/(sqrt(M) mean(w)) = (e^(upper-log Z) - 1)/3."""
    return math.expm1(upper - log_z) / 3.0


def agreement(ll_a, ais_a, ll_b, ais_b):
    """Do two backends' estimates on the same models agree within their error bars?

    IW: the per-image estimates differ only by Monte Carlo noise (independent random streams), so the mean paired
    difference should be zero within 3 standard errors. AIS: the two log Z estimates differ by less than 3 standard
    errors of their difference, decided only when both error bars can be trusted: a lower bound of -inf (3 sd(w)/sqrt(M)
    >= mean(w)) means the weights are too heavy-tailed for the delta-method standard error, and ``within_3_se`` is then
    None (benchmarks/ais_spread.py measures the spread over seeds instead)."""
    d = ll_b - ll_a
    se_iw = float(np.std(d, ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.inf
    se_a, se_b = ais_standard_error(ais_a[0], ais_a[2]), ais_standard_error(ais_b[0], ais_b[2])
    se_ais = math.hypot(se_a, se_b)
    iw = {"mean_a": float(np.mean(ll_a)), "mean_b": float(np.mean(ll_b)), "mean_difference": float(np.mean(d)),
          "standard_error": se_iw, "within_3_se": bool(abs(np.mean(d)) <= 3 * se_iw)}
    trustworthy = math.isfinite(ais_a[1]) and math.isfinite(ais_b[1])
    ais = {"log_z_a": ais_a[0], "log_z_b": ais_b[0], "difference": ais_b[0] - ais_a[0], "standard_error_a": se_a,
           "standard_error_b": se_b, "standard_error": se_ais, "error_bars_trustworthy": trustworthy,
           "within_3_se": bool(abs(ais_b[0] - ais_a[0]) <= 3 * se_ais) if trustworthy else None}
    return {"iw": iw, "ais": ais}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy", "strict"], default="numpy")
    p.add_argument("--k", type=int, default=None, help="importance samples per test image (default 5000)")
    p.add_argument("--betas", type=int, default=None, help="AIS temperatures (default 14500)")
    p.add_argument("--chains", type=int, default=None, help="AIS chains (default 100)")
    p.add_argument("--n-test", type=int, default=None, help="test images (default all 2,000)")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as the BLAS starts)")
    p.add_argument("--compare-numpy", action="store_true",
                   help="also evaluate the same models on NumPy and test that the estimates agree within error bars")
    p.add_argument("--compare-n-test", type=int, default=500,
                   help="with --compare-numpy: the first N test images are evaluated on NumPy too (default 500)")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny settings, JSON to a temporary directory, not the checkout")
    p.add_argument("--json", default=None, help="default: benchmarks/results/bench_eval_<backend>.json")
    args = p.parse_args(argv)
    q = args.quick
    k = args.k or (100 if q else 5000)
    n_betas = args.betas or (200 if q else 14500)
    chains = args.chains or (20 if q else 100)
    B = refvae.set_backend(args.backend)

    train, test = refvae.datasets.load("mnist-10k")
    train, test = (train[:1000], test[:args.n_test or 100]) if q else (train, test[:args.n_test])
    n_test = test.shape[0]
    test_bin = B.to_numpy(refvae.evaluation.binarize_fixed(test))       # on the host: each backend moves it
    X_bin = (np.random.default_rng(0).random(train.shape) < train).astype(np.float32)   # RBM data, binarised once

    with thread_limit(args.threads)[0]:
        vae, rbm, vae_train_s, rbm_train_s = train_models(train, X_bin)
        # (a) VAE: importance-weighted log-likelihood; (b) RBM: AIS estimate of log Z
        ll, t_ll, (log_z, lo, hi), t_ais, rbm_ll = evaluate(B, vae, rbm, test_bin, X_bin, k, chains, n_betas)
        rows = min(k, MAX_ROWS) * max(1, MAX_ROWS // k)                         # decoded rows per chunk
        gflop_ll = (n_test * 2 * (784 * 400 + 400 * 40) + n_test * k * 2 * (20 * 400 + 400 * 784)) / 1e9
        rate_ll = matmul_rate(B, [(rows, 20, 400), (rows, 400, 784)])
        M, V, H = chains, 784, 500
        gflop_ais = ((n_betas - 1) * (2 * 2 * M * V * H + 2 * 2 * M * V) + 2 * 2 * M * V) / 1e9
        rate_ais = matmul_rate(B, [(M, V, H), (M, H, V)])
        info = machine_info(B)
        compare = None
        if args.compare_numpy:
            host = refvae.set_backend("numpy")
            n_cmp = min(args.compare_n_test, n_test)
            ll_h, t_ll_h, ais_h, t_ais_h, _ = evaluate(host, vae, rbm, test_bin[:n_cmp], X_bin, k, chains, n_betas)
            refvae.set_backend(args.backend)
            compare = {"n_test": n_cmp, "numpy_iw_seconds": t_ll_h, "numpy_ais_seconds": t_ais_h,
                       **agreement(ll_h, ais_h, ll[:n_cmp], (log_z, lo, hi))}

    mean_ll = float(np.mean(ll))
    rows_out = [("VAE log_likelihood", f"{n_test} images, k={k}", t_ll, gflop_ll, rate_ll),
                ("RBM AIS log Z", f"{chains} chains, {n_betas} temperatures", t_ais, gflop_ais, rate_ais)]
    result = {**info, "backend": args.backend, "threads": args.threads, "quick": q, "n_train": train.shape[0],
              "trained_on": "numpy",
              "vae": {"n_test": n_test, "k": k, "chunk_rows": rows, "seconds": t_ll, "gflop": gflop_ll,
                      "matmul_gflops": rate_ll, "gflops": gflop_ll / t_ll,
                      "fraction_of_matmul": gflop_ll / t_ll / rate_ll,
                      "mean_log_likelihood": mean_ll, "train_seconds": vae_train_s},
              "ais": {"chains": chains, "betas": n_betas, "seconds": t_ais, "gflop": gflop_ais,
                      "matmul_gflops": rate_ais, "gflops": gflop_ais / t_ais,
                      "fraction_of_matmul": gflop_ais / t_ais / rate_ais, "log_z": log_z,
                      "log_z_bounds": [x if math.isfinite(x) else None for x in (lo, hi)],
                      "mean_test_log_likelihood": rbm_ll, "train_seconds": rbm_train_s}}
    if compare is not None:
        result["agreement_with_numpy"] = compare

    print("| evaluation | settings | seconds | GFLOP | GFLOP/s | matmul GFLOP/s | fraction of matmul rate |")
    print("|---|---|---|---|---|---|---|")
    for name, settings, t, g, r in rows_out:
        print(f"| {name} | {settings} | {t:.2f} | {g:.1f} | {g / t:.1f} | {r:.1f} | {g / t / r:.0%} |")
    print(f"\nVAE mean test log-likelihood {mean_ll:.2f} nats (after 1 epoch); RBM log Z {log_z:.2f} "
          f"[{lo:.2f}, {hi:.2f}], mean test log-likelihood {rbm_ll:.2f} nats")
    if compare is not None:
        iw, ais = compare["iw"], compare["ais"]
        print(f"{args.backend} vs numpy on the same models: IW mean over {compare['n_test']} images {iw['mean_b']:.3f} vs {iw['mean_a']:.3f}, "
              f"paired difference {iw['mean_difference']:+.4f} ± {iw['standard_error']:.4f} (1 se) "
              f"[{'agrees' if iw['within_3_se'] else 'DISAGREES'}]; AIS log Z {ais['log_z_b']:.3f} vs "
              f"{ais['log_z_a']:.3f}, difference {ais['difference']:+.4f} ± {ais['standard_error']:.4f} (1 se) "
              f"[{AIS_VERDICT[ais['within_3_se']]}]; numpy took {compare['numpy_iw_seconds']:.1f} s "
              f"and {compare['numpy_ais_seconds']:.1f} s")
    write_result(result, "bench_eval", args.backend, q, args.json)
    return result


if __name__ == "__main__":
    main()
