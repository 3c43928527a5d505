"""Three latent-variable models on mnist-10k, one table: held-out log-likelihood, each with its estimator named.

- Gaussian VAE 784-400-20 (Adam 1e-3, batch 128): importance-weighted estimate with k samples from q(z|x)
  (Burda et al. 2015), a stochastic lower bound on log p(x);
- Bernoulli RBM 784-500 (CD-10, SGD 0.01 with momentum 0.9, batch 100): -F(x) - log Z with log Z by AIS
  (Salakhutdinov & Murray 2008), 100 chains; an underestimate of log Z makes the estimate too high, so its
  ±3 s.d. interval is reported;
- Helmholtz machine 784-200-50 (reweighted wake-sleep, k = 5, SGD 0.01 with momentum 0.9, batch 20, factorial
  prior): importance-weighted estimate with k samples from Q(h|x) (Bornschein & Bengio 2015), a stochastic lower
  bound.

All are scored on the same 2,000 test images, binarised once with a fixed seed, after EPOCHS epochs on the 8,000
training images (dynamically binarised).

    python examples/compare_models.py                 # several minutes on 2 cores
    python examples/compare_models.py --quick         # seconds (CI)

Writes OUT/summary.md and OUT/results.json.
"""

import argparse
import json
import math
import time
from pathlib import Path

import refvae
from refvae.cli import markdown_cell, use_backend_or_exit
from rbm import BernoulliRBM
from refvae.evaluation import binarize_fixed
from wakesleep import HelmholtzMachine


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def summary_lines(rows, n_train, n_test, epochs, backend, quick):
    """The lines of summary.md: the table of ``rows`` (name -> result) and how to read it."""
    lines = ["# VAE, RBM and Helmholtz machine on mnist-10k", "",
             ("Quick smoke run (tiny models and data: not evidence). " if quick else "")
             + f"{n_train} training images, {n_test} test images binarised once (seed 1234), "
             f"{epochs} epochs each, backend {backend}.", "",
             "| model | held-out log-likelihood (nats) | estimator | training s | evaluation s |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        lo, hi = r.get("interval", (None, None))
        interval = "" if lo is None else f" [{lo:.2f}, " + ("no upper bound]" if hi is None else f"{hi:.2f}]")
        lines.append(f"| {markdown_cell(name)} | {r['log_likelihood']:.2f}{interval} | {markdown_cell(r['estimator'])} | "
                     f"{r['train_seconds']:.1f} | {r['eval_seconds']:.1f} |")
    lines += ["", "The importance-weighted estimates are stochastic lower bounds (in expectation) on log p(x); the "
              "RBM's is as good as AIS's log Z, whose ±3 s.d. interval gives the bracket.", ""]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--k", type=int, default=5000, help="importance samples per test image (VAE, Helmholtz)")
    p.add_argument("--ais-betas", type=int, default=14500)
    p.add_argument("--out", default="runs/compare_models")
    args = p.parse_args(argv)
    use_backend_or_exit(p, args.backend)
    B = refvae.get_backend()
    xp = B.xp
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_x, test_x = refvae.datasets.load("mnist-10k")
    epochs, k, betas, chains, hm_layers = args.epochs, args.k, args.ais_betas, 100, (200, 50)
    if args.quick:
        train_x, test_x, epochs, k, betas, chains, hm_layers = train_x[:500], test_x[:100], 1, 20, 100, 10, (20, 5)
    test_bin = binarize_fixed(test_x)
    fit_options = dict(epochs=epochs, binarize="dynamic", seed=0, progress=False)
    rows = {}

    vae = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
    _, t_train = timed(lambda: refvae.fit(vae, train_x, batch_size=128, optimizer=refvae.Adam(1e-3), **fit_options))
    ll, t_eval = timed(lambda: float(xp.mean(vae.log_likelihood(test_bin, k=k, seed=0))))
    rows["Gaussian VAE 784-400-20"] = {"log_likelihood": ll, "estimator": f"importance-weighted, k={k} from q(z|x)",
                                       "train_seconds": t_train, "eval_seconds": t_eval}

    rbm = BernoulliRBM(784, 500, seed=0, k=10, persistent=False, weight_decay=2e-4)
    rbm.init_visible_bias(train_x)
    _, t_train = timed(lambda: refvae.fit(rbm, train_x, batch_size=100, optimizer=refvae.SGD(0.01, momentum=0.9),
                                          **fit_options))
    est, t_eval = timed(lambda: rbm.log_partition("ais", n_chains=chains, betas=betas, data=train_x,
                                                  return_bounds=True))
    ll = float(xp.mean(rbm.log_likelihood(test_bin, log_z=est.log_z)))
    upper = ll + (est.log_z - est.lower) if math.isfinite(est.lower) else None    # None: AIS gave no lower bound
    rows["RBM 784-500, CD-10"] = {"log_likelihood": ll, "interval": [ll - (est.upper - est.log_z), upper],
                                  "estimator": f"-F(x) - log Z, log Z by AIS ({chains} chains, {betas} temperatures, "
                                               f"{est.ess:.1f} effective chains"
                                               + ("" if est.trustworthy else ", NOT TRUSTWORTHY") + ")",
                                  "train_seconds": t_train, "eval_seconds": t_eval}

    hm = HelmholtzMachine((784, *hm_layers), seed=0, algorithm="rws", k=5)
    _, t_train = timed(lambda: refvae.fit(hm, train_x, batch_size=20, optimizer=refvae.SGD(0.01, momentum=0.9),
                                          **fit_options))
    ll, t_eval = timed(lambda: float(xp.mean(hm.log_likelihood(test_bin, method="importance", k=k, seed=0))))
    rows[f"Helmholtz machine 784-{'-'.join(map(str, hm_layers))}, RWS k=5"] = {
        "log_likelihood": ll, "estimator": f"importance-weighted, k={k} from Q(h|x)",
        "train_seconds": t_train, "eval_seconds": t_eval}

    lines = summary_lines(rows, train_x.shape[0], test_x.shape[0], epochs, B.name, args.quick)
    (out / "summary.md").write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
