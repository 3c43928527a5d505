"""The spread of AIS log Z estimates over seeds: the error bar that the AIS weights' own spread cannot give.

    python benchmarks/ais_spread.py [--backend numpy|cupy] [--seeds 0 1 2 3 4] [--json out.json]

The RBM of bench_eval.py (784-500, one epoch of CD-1 on mnist-10k, trained on NumPy so that every backend
estimates the same model), then ``log_partition("ais", n_chains=100, betas=14500, seed=s)`` for each seed.
Each run's bounds log(mean(w) -+ 3 sd(w)/sqrt(M)) come from the spread of its own 100 weights; when the lower
bound is -inf (3 sd(w)/sqrt(M) >= mean(w)) the weights are too heavy-tailed for that error bar to mean much, and
the seed-to-seed standard deviation written here is the honest uncertainty of one estimate. Two backends agree
when their mean log Z over seeds differ by less than 3 standard errors of the difference (each sd / sqrt(seeds)).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

import refvae
from bench_eval import on_backend, train_models
from common import machine_info, timed, write_result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy", "strict"], default="numpy")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--betas", type=int, default=14500)
    p.add_argument("--quick", action="store_true", help="smoke test: 1,000 images, 20 chains, 200 temperatures")
    p.add_argument("--json", default=None, help="default: benchmarks/results/ais_spread_<backend>.json")
    args = p.parse_args(argv)
    chains, betas = (20, 200) if args.quick else (args.chains, args.betas)
    B = refvae.set_backend(args.backend)
    train, _ = refvae.datasets.load("mnist-10k")
    if args.quick:
        train = train[:1000]
    X_bin = (np.random.default_rng(0).random(train.shape) < train).astype(np.float32)
    _, rbm, _, _ = train_models(train, X_bin)
    rbm = on_backend(rbm, B)
    data = B.asarray(X_bin)
    runs = []
    for seed in args.seeds:
        (log_z, lo, hi), t = timed(B, lambda: rbm.log_partition("ais", n_chains=chains, betas=betas, seed=seed,
                                                                data=data, return_bounds=True))
        runs.append({"seed": seed, "log_z": log_z, "lower": lo if math.isfinite(lo) else None, "upper": hi,
                     "seconds": t})
        print(f"seed {seed}: log Z {log_z:.3f} [{lo:.3f}, {hi:.3f}] ({t:.1f} s)", flush=True)
    values = [r["log_z"] for r in runs]
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    result = {**machine_info(B), "backend": args.backend, "chains": chains, "betas": betas, "quick": args.quick,
              "date": time.strftime("%Y-%m-%d %H:%M"), "runs": runs, "mean_log_z": statistics.mean(values),
              "sd_log_z": sd, "standard_error_of_mean": sd / math.sqrt(len(values)),
              "runs_with_infinite_lower_bound": sum(r["lower"] is None for r in runs)}
    print(f"mean log Z {result['mean_log_z']:.3f}, sd over {len(values)} seeds {sd:.3f}, "
          f"standard error of the mean {result['standard_error_of_mean']:.3f}; "
          f"{result['runs_with_infinite_lower_bound']} of {len(values)} runs have a lower bound of -inf")
    write_result(result, "ais_spread", args.backend, args.quick, args.json)
    return result


if __name__ == "__main__":
    main()
