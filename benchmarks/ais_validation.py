"""AIS and RAISE against the exact log Z: does each estimate's own error bar hold, seed after seed?

    python benchmarks/ais_validation.py [--seeds 20] [--betas 14500] [--chains 100] [--raise-images 100]
                                        [--raise-chains 1] [--raise-betas 14500]
    python benchmarks/ais_validation.py --quick          # seconds (CI)

The model: the 784-25 RBM of examples/reproduce_rbm_mnist.py (CD-1 on the 60,000 MNIST images,
docs/results/reproductions/rbm_mnist/cd1-25.npz), whose log Z is exact by enumerating its 2^25 hidden states. For
each seed:

  AIS    log Z with 100 chains and the paper's 14,500 temperatures from the base-rate model; its band
         [lower, upper] = log(mean(w) -+ 3 sd(w)/sqrt(M)) + log Z_A holds when it contains the exact log Z
  RAISE  on --raise-images test images (a fresh random subset per seed), --raise-chains reverse chains each
         through --raise-betas temperatures (default: AIS's), the log Z it implies, mean over the
         images of -F(x) - log p_RAISE(x), with its 3-standard-error bar (over the images); it holds when it
         contains the exact log Z. Its conservative side: implied log Z >= exact - 3 se.

Writes benchmarks/results/ais_validation_<backend>.json (--quick: a temporary directory).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import refvae
from common import machine_info, write_result
from rbm import BernoulliRBM, raise_log_likelihood

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "docs" / "results" / "reproductions" / "rbm_mnist" / "cd1-25.npz"
DATA = ROOT.parent / "shared" / "data" / "mnist"


def load(args):
    """(model, train, test): the saved 784-25 RBM and the binarised full MNIST; --quick: a 784-10 RBM trained for
    one epoch on 1,000 embedded images."""
    if args.quick:
        train, test = refvae.datasets.load("mnist-10k", binarize="stochastic-once")
        train, test = train[:1000], test[:200]
        model = BernoulliRBM(784, 10, persistent=False, seed=0)
        model.init_visible_bias(train)
        refvae.fit(model, train, epochs=1, batch_size=100, optimizer=refvae.SGD(0.05, momentum=0.5), progress=False,
                   verbose=False)
        return model, train, test
    train, test = refvae.datasets.load("mnist", data_dir=args.data_dir, binarize="stochastic-once", binarize_seed=0)
    return BernoulliRBM.load(args.model), train, test


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="numpy")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--betas", type=int, default=14500)
    p.add_argument("--raise-images", type=int, default=100)
    p.add_argument("--raise-chains", type=int, default=1)
    p.add_argument("--raise-betas", type=int, default=None, help="RAISE's temperatures (default: --betas)")
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--data-dir", default=str(DATA))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.chains, args.betas, args.raise_images, args.raise_betas = 3, 20, 300, 20, None
    raise_betas = args.betas if args.raise_betas is None else args.raise_betas
    B = refvae.set_backend(args.backend)
    model, train, test = load(args)
    exact = model.log_partition("exact")
    data = B.asarray(train)
    runs = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        ais = model.log_partition("ais", n_chains=args.chains, betas=args.betas, data=data, seed=seed,
                                  return_bounds=True)
        t_ais = time.perf_counter() - t0
        subset = np.random.default_rng(1000 + seed).choice(test.shape[0], size=args.raise_images, replace=False)
        t0 = time.perf_counter()
        r = raise_log_likelihood(model, B.asarray(test[np.sort(subset)]), n_chains=args.raise_chains,
                                 betas=raise_betas, data=data, seed=seed)
        t_raise = time.perf_counter() - t0
        runs.append({"seed": seed, "ais_log_z": ais.log_z, "ais_lower": ais.lower if math.isfinite(ais.lower) else None,
                     "ais_upper": ais.upper, "ais_ess": ais.ess, "ais_error": ais.log_z - exact,
                     "ais_band_holds": bool(ais.lower <= exact <= ais.upper), "ais_seconds": t_ais,
                     "raise_log_z": r.log_z, "raise_log_z_se": r.log_z_se, "raise_error": r.log_z - exact,
                     "raise_bar_holds": bool(abs(r.log_z - exact) <= 3 * r.log_z_se),
                     "raise_conservative": bool(r.log_z >= exact - 3 * r.log_z_se), "raise_seconds": t_raise})
        print(f"seed {seed}: AIS {ais.log_z - exact:+.3f} (band {'holds' if runs[-1]['ais_band_holds'] else 'MISSES'}),"
              f" RAISE {r.log_z - exact:+.3f} +- {r.log_z_se:.3f} ({t_ais:.0f} s + {t_raise:.0f} s)", flush=True)
    ais_errors = [r["ais_error"] for r in runs]
    result = {**machine_info(B), "backend": B.name, "quick": args.quick, "command": " ".join(sys.argv), "model": "quick 784-10" if args.quick else
              str(Path(args.model).relative_to(ROOT)), "exact_log_z": exact, "chains": args.chains,
              "betas": args.betas, "raise_images": args.raise_images, "raise_chains": args.raise_chains,
              "raise_betas": raise_betas, "seeds": args.seeds, "runs": runs,
              "ais_band_holds": sum(r["ais_band_holds"] for r in runs),
              "raise_bar_holds": sum(r["raise_bar_holds"] for r in runs),
              "raise_conservative": sum(r["raise_conservative"] for r in runs),
              "ais_sd_log_z": statistics.stdev(ais_errors) if len(runs) > 1 else None,
              "ais_mean_error": statistics.fmean(ais_errors)}
    print(f"AIS band holds in {result['ais_band_holds']}/{args.seeds} seeds (sd {result['ais_sd_log_z']:.3f}); "
          f"RAISE bar holds in {result['raise_bar_holds']}/{args.seeds}")
    write_result(result, "ais_validation", B.name, quick=args.quick, path=args.json)
    return result


if __name__ == "__main__":
    main()
