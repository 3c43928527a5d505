"""RAISE's bias against the number of reverse chains per image, on a model whose log P(v) is exact.

    python benchmarks/raise_chains.py [--images 100] [--chains 50] [--betas 14500]
    python benchmarks/raise_chains.py --quick          # seconds (CI)

The model: the 784-25 RBM of examples/reproduce_rbm_mnist.py (docs/results/reproductions/rbm_mnist/cd1-25.npz),
whose log Z is exact. Reverse annealing runs --chains chains from each of --images random test images; the
log-weights are then grouped into independent estimates with S = 1, 2, 5, 10, 20, 50, ... chains each
(log mean_s w over a group), and each estimate's error against the exact log P(v) is averaged over the images:
RAISE's bias at S chains (negative: conservative), with the standard error of the per-image mean (what RAISE's
own error bar would claim on these images).

Writes benchmarks/results/raise_chains_<backend>.json (--quick: a temporary directory).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

import refvae
from common import machine_info, write_result
from ais_validation import load
from rbm.partition import ais_schedule, base_rate_biases
from rbm.reverse_annealing import raise_log_weights

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "docs" / "results" / "reproductions" / "rbm_mnist" / "cd1-25.npz"
DATA = ROOT.parent / "shared" / "data" / "mnist"
GROUPS = (1, 2, 5, 10, 20, 50, 100, 200)


def bias_by_chains(log_w: np.ndarray, exact: np.ndarray) -> dict:
    """From log-weights (n, S_total) (log Z_A included) and the exact log P (n,): for each group size S that
    divides into S_total, the mean over the images of (log mean_s w - exact), over the groups, and its s.e."""
    out = {}
    for s in (g for g in GROUPS if g <= log_w.shape[1]):
        groups = log_w.shape[1] // s
        est = np.stack([logsumexp(log_w[:, g * s:(g + 1) * s], axis=1) - math.log(s) for g in range(groups)], 1)
        err = est - exact[:, None]                                              # (n, groups)
        out[str(s)] = {"mean_error": float(err.mean()), "groups": groups,
                       "claimed_se": float(np.mean(err.std(axis=0, ddof=1)) / math.sqrt(err.shape[0]))}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="numpy")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--chains", type=int, default=50)
    p.add_argument("--betas", type=int, default=14500)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--exact-log-z", type=float, default=None,
                   help="the model's exact log Z when known (docs/results/reproductions/rbm_mnist/"
                        "cd1-25_evaluation.json), to skip enumerating it again (minutes)")
    p.add_argument("--data-dir", default=str(DATA))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    B = refvae.set_backend(args.backend)
    if args.quick:
        args.images, args.chains, args.betas = 10, 4, 200
    args.model = str(MODEL)
    model, train, test = load(args)                  # the same model and data as ais_validation.py
    V = B.asarray(test[np.sort(np.random.default_rng(1).choice(test.shape[0], args.images, replace=False))])
    log_z = model.log_partition("exact") if args.exact_log_z is None or args.quick else args.exact_log_z
    exact = B.to_numpy(model.log_likelihood(V, log_z=log_z)).astype(np.float64)
    b_a = base_rate_biases(model, B.asarray(train))
    log_z_a = float(np.sum(np.logaddexp(0.0, B.to_numpy(b_a).astype(np.float64)))) + model.n_hidden * math.log(2.0)
    t0 = time.perf_counter()
    log_w = B.to_numpy(raise_log_weights(model, V, ais_schedule(args.betas), b_a, args.chains,
                                         B.rng(args.seed))).astype(np.float64) - log_z_a
    seconds = time.perf_counter() - t0
    result = {**machine_info(B), "backend": B.name, "quick": args.quick, "command": " ".join(sys.argv),
              "images": args.images,
              "chains": args.chains, "betas": args.betas, "seconds": seconds,
              "model": "quick 784-10" if args.quick else str(MODEL.relative_to(ROOT)),
              "sd_log_w_per_image": float(log_w.std(axis=1, ddof=1).mean()),
              "by_chains": bias_by_chains(log_w, exact)}
    for s, r in result["by_chains"].items():
        print(f"{s:>4} chains: mean error {r['mean_error']:+.3f} nats (s.e. claimed {r['claimed_se']:.3f}, "
              f"{r['groups']} groups)")
    write_result(result, f"raise_chains_b{args.betas}", B.name, quick=args.quick, path=args.json)
    return result


if __name__ == "__main__":
    main()
