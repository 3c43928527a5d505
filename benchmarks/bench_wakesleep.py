"""Benchmark: seconds per epoch of a Helmholtz machine trained by wake-sleep and by reweighted wake-sleep (k=5).

    python benchmarks/bench_wakesleep.py [--backend numpy|cupy] [--epochs 4] [--threads N] [--quick] [--json out.json]

``wakesleep.HelmholtzMachine((784, 200, 50), algorithm="wake-sleep")`` and ``(..., algorithm="rws", k=5)``,
factorial prior, float32, trained by ``refvae.fit`` (batches of 20, SGD 0.01 with momentum 0.9, dynamic
binarisation) on mnist-10k's 8,000 training images. The epochs of the two models alternate; seconds per
epoch are the median over each model's epochs after its first (the warm-up), as ``fit`` records them.

FLOPs are counted from the shapes of the matrix products (matrix-vector products ignored). Per layer pair
(a units below, b above) one update on n examples with k samples each (wake-sleep: k = 1) needs, on the n k
wake rows, Q's forward pass (n k x a x b), P's forward pass (n k x b x a) and P's dW (b x n k x a), for RWS
also Q's dW (a x n k x b); on n dreams, P's forward pass, Q's forward pass and Q's dW. That is the
"algorithm" count (wake-sleep 6 products per layer on n rows; RWS 4 on n k rows + 3 on n). refvae's update
computes each forward pass once and shares it between the monitored loss and the updates, so it executes the
same products (before 2026-11-25 it recomputed log P(x, h) and
log Q(h | x) for the loss, +2 per layer on n k rows, and Q's forward pass for RWS, +1). The achieved rate is set
against the matrix-multiply rate measured in this process on the algorithm's shapes for a batch (float32).
"""

from __future__ import annotations

import argparse
import statistics


import refvae
from common import flops, machine_info, matmul_rate, thread_limit, write_result
from wakesleep import HelmholtzMachine

SIZES, BATCH = (784, 200, 50), 20
MODELS = {"wake-sleep": {"algorithm": "wake-sleep"}, "rws k=5": {"algorithm": "rws", "k": 5}}


def update_products(n, k=1, rws=False, sizes=SIZES):
    """(m, k, n) shapes of the algorithm's matrix products in one update on n examples, which are exactly those
    refvae executes (see the module docstring)."""
    algo = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        r = n * k
        algo += [(r, a, b), (r, b, a), (b, r, a)] + ([(a, r, b)] if rws else [])   # wake: Q, P forward; dP (RWS: dQ)
        algo += [(n, b, a), (n, a, b), (a, n, b)]                                  # sleep: dream, Q forward, dQ
    return algo




def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--epochs", type=int, default=None, help="per model: 1 warm-up + the measured ones (default 4)")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as the BLAS starts)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1,000 images, 2 epochs, JSON to a temporary directory, not the checkout")
    p.add_argument("--json", default=None, help="default: benchmarks/results/bench_wakesleep_<backend>.json")
    args = p.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 4)
    if epochs < 2:
        p.error("--epochs must be >= 2 (1 warm-up + at least 1 measured)")
    B = refvae.set_backend(args.backend)
    train, _ = refvae.datasets.load("mnist-10k")
    if args.quick:
        train = train[:1000]
    n = train.shape[0]

    with thread_limit(args.threads)[0]:
        X = B.asarray(train)
        runs = {name: (HelmholtzMachine(SIZES, seed=0, **kw), refvae.SGD(0.01, momentum=0.9))
                for name, kw in MODELS.items()}
        times, losses = {name: [] for name in MODELS}, {name: [] for name in MODELS}
        for epoch in range(epochs):
            for name, (model, opt) in runs.items():
                B.synchronize()
                h = refvae.fit(model, X, epochs=1, batch_size=BATCH, optimizer=opt, binarize="dynamic", seed=epoch,
                               progress=False)
                times[name].append(h["seconds"][0])
                losses[name].append(h["train_loss"][0])
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
        stats = {}
        for name, kw in MODELS.items():
            rws, k = kw["algorithm"] == "rws", kw.get("k", 1)
            algo = update_products(n, k, rws)              # linear in n: the whole epoch at once
            rate = matmul_rate(B, update_products(BATCH, k, rws))
            sec = statistics.median(times[name][1:])
            stats[name] = {"seconds_per_epoch": sec, "gflop_per_epoch": flops(algo) / 1e9,
                           "matmul_gflops": rate,
                           "gflops": flops(algo) / 1e9 / sec, "fraction_of_matmul": flops(algo) / 1e9 / sec / rate,
                           "train_loss": losses[name], "times": times[name]}
        info = machine_info(B)

    result = {**info, "backend": args.backend, "threads": args.threads, "quick": args.quick, "n_train": n,
              "batch_size": BATCH, "layer_sizes": list(SIZES), "epochs_measured": epochs - 1, "models": stats}
    print()
    print(f"| algorithm | s/epoch (median of {epochs - 1}) | GFLOP/epoch | GFLOP/s | matmul GFLOP/s "
          "| fraction of matmul rate |")
    print("|---|---|---|---|---|---|")
    for name, s in stats.items():
        print(f"| {name} | {s['seconds_per_epoch']:.3f} "
              f"| {s['gflop_per_epoch']:.2f} "
              f"| {s['gflops']:.1f} | {s['matmul_gflops']:.1f} "
              f"| {s['fraction_of_matmul']:.0%} |")
    write_result(result, "bench_wakesleep", args.backend, args.quick, args.json)
    return result


if __name__ == "__main__":
    main()
