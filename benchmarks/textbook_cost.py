"""What the textbook forms would cost: each fast twin of refvae/fast.py against its textbook form, alternating.

    python benchmarks/textbook_cost.py [--epochs 11] [--json out.json]

784-400-20 ReLU, Bernoulli, batch 128, dynamic binarisation, mnist-10k, NumPy (as bench_vae.py). Three pairs, each
run alternately in one process (so the machine's drift cancels), reported as the median ratio textbook / fast:

* Adam: ``Adam(1e-3, fast=False)`` (Kingma & Ba, Algorithm 1, line by line) against ``Adam(1e-3)`` (the
  unnormalised sums of ``optim.adam_step_sums``), one training epoch each;
* the Bernoulli term: the VAE's step with ``GaussianVAE(fast=False)`` (``-numerics.bernoulli_log_prob`` and
  ``-numerics.bernoulli_log_prob_grad``, two passes computing e^{-|l|}) against ``fast=True``
  (``numerics.bernoulli_nll_with_grad``), one training epoch each;
* blocks on every core: ``GaussianVAE.log_likelihood`` (200 test images, k = 1000) with ``fast=False`` (a plain
  loop over the blocks) against ``fast=True`` (``fast.map_blocks``'s thread pool).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import refvae

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_info, write_result  # noqa: E402 - benchmarks/ is on the path only now


def alternate(run_fast, run_textbook, repeats):
    """Median over pairs of textbook / fast seconds (after one warm-up pair), with both medians."""
    times = {"fast": [], "textbook": []}
    for i in range(repeats + 1):
        for name, run in (("fast", run_fast), ("textbook", run_textbook)):
            t0 = time.perf_counter()
            run(i)
            if i:
                times[name].append(time.perf_counter() - t0)
    ratios = [t / f for t, f in zip(times["textbook"], times["fast"])]
    return {"seconds_fast": statistics.median(times["fast"]), "seconds_textbook": statistics.median(times["textbook"]),
            "ratio_textbook_over_fast": statistics.median(ratios), "pairs": repeats}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=11, help="pairs of epochs per comparison, after a warm-up pair")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    B = refvae.set_backend("numpy")
    train, test = refvae.datasets.load("mnist-10k")
    X = B.asarray(train)
    settings = dict(epochs=1, batch_size=128, binarize="dynamic", progress=False)
    results = {}

    models = {name: refvae.GaussianVAE(784, 20, hidden=(400,), seed=0) for name in ("fast", "textbook")}
    opts = {"fast": refvae.Adam(1e-3), "textbook": refvae.Adam(1e-3, fast=False)}
    results["adam"] = alternate(
        lambda i: refvae.fit(models["fast"], X, optimizer=opts["fast"], seed=i, **settings),
        lambda i: refvae.fit(models["textbook"], X, optimizer=opts["textbook"], seed=i, **settings), args.epochs)

    models = {name: refvae.GaussianVAE(784, 20, hidden=(400,), seed=0, fast=name == "fast")
              for name in ("fast", "textbook")}
    opts = {name: refvae.Adam(1e-3) for name in models}
    results["bernoulli"] = alternate(
        lambda i: refvae.fit(models["fast"], X, optimizer=opts["fast"], seed=i, **settings),
        lambda i: refvae.fit(models["textbook"], X, optimizer=opts["textbook"], seed=i, **settings), args.epochs)

    model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
    refvae.fit(model, X, optimizer=refvae.Adam(1e-3), **settings)
    test_bin = refvae.evaluation.binarize_fixed(test[:200])
    plain = refvae.GaussianVAE(**{**model.config, "fast": False})      # the same parameters, the blocks in a loop
    plain.set_params(model.params)
    results["map_blocks"] = alternate(lambda i: model.log_likelihood(test_bin, k=1000, seed=i),
                                      lambda i: plain.log_likelihood(test_bin, k=1000, seed=i), max(3, args.epochs // 2))

    print("| fast twin | fast (s) | textbook (s) | textbook / fast (median of pairs) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds_fast']:.3f} | {r['seconds_textbook']:.3f} | {r['ratio_textbook_over_fast']:.2f} |")
    if args.json:
        write_result({**machine_info(B), "results": results}, "textbook_cost", "numpy", path=args.json)
    return results


if __name__ == "__main__":
    main()
