"""Benchmark: refvae's RBM (PCD-1) against scikit-learn's BernoulliRBM, epochs run alternately.

    python benchmarks/bench_rbm.py [--backend numpy|cupy] [--epochs 6] [--threads N] [--no-sklearn] [--quick]
                                   [--json out.json]

784-500 Bernoulli RBM, persistent contrastive divergence with one Gibbs step and 100 chains, batches of 100,
learning rate 0.01, float32, on mnist-10k's 8,000 training images binarised once (a Bernoulli draw with NumPy
seed 0; the same array for both libraries).
refvae: ``rbm.BernoulliRBM(784, 500, persistent=True, k=1)`` trained by ``refvae.fit`` (SGD, momentum 0.9,
batches shuffled). scikit-learn: ``BernoulliRBM(n_components=500, learning_rate=0.01, batch_size=100,
n_iter=1).fit(X)`` once per epoch on the float32 array (plain SGD, batches in order; every call re-initialises
the weights and chains, a 500 x 784 normal draw, and checks X). Both use the same BLAS with the same thread
count (threadpoolctl; default: the CPUs this process may use). Seconds per epoch are the median over each
library's epochs after its first (the warm-up); the epochs of the two libraries alternate.

FLOPs per epoch are counted from the shapes of the algorithm's matrix products on a batch of n examples:
the positive phase v W (n x 784 x 500), the negative Gibbs sweep h W^T and v W, and the two outer products
v^T h for dW: 5 x 2 n 784 500. Both libraries execute exactly these: each PCD sweep starts from the chains'
hidden states stored at the previous update (refvae's ``chain_hidden``, scikit-learn's ``h_samples_``), and
refvae's monitored free-energy gap reuses the pre-activations (no extra product). Reported as "executed".
The achieved rate is set against the matrix-multiply rate measured in
this process on the same shapes and dtype. With --backend cupy refvae runs on the GPU (its matmul rate is the
GPU's, every timing synchronised) and scikit-learn on the CPU (set against the CPU's rate).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import refvae
from common import machine_info, matmul_rate, thread_limit, write_result
from rbm import BernoulliRBM

V, H, BATCH = 784, 500, 100


def rbm_shapes(n, v=V, h=H):
    """(m, k, n) of the 5 matrix products of one PCD-1 update: v W, h W^T, v W, v^T h, h^T v."""
    return [(n, v, h), (n, h, v), (n, v, h), (v, n, h), (h, n, v)]










def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--epochs", type=int, default=None, help="per library: 1 warm-up + the measured ones (default 6)")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads for both (default: the usable CPUs)")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke test: 1,000 images, 2 epochs, JSON to a temporary directory, not the checkout")
    p.add_argument("--json", default=None, help="default: benchmarks/results/bench_rbm_<backend>.json")
    args = p.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 6)
    if epochs < 2:
        p.error("--epochs must be >= 2 (1 warm-up + at least 1 measured)")
    threads = args.threads or len(os.sched_getaffinity(0))
    B = refvae.set_backend(args.backend)

    train, _ = refvae.datasets.load("mnist-10k")
    if args.quick:
        train = train[:1000]
    X = (np.random.default_rng(0).random(train.shape) < train).astype(np.float32)   # binarised once, shared
    n = X.shape[0]

    SkRBM = None
    if not args.no_sklearn:
        try:
            import sklearn
            from sklearn.neural_network import BernoulliRBM as SkRBM
        except ImportError as err:
            print(f"scikit-learn side skipped: {err} (pip install scikit-learn)")

    limits, thread_note = thread_limit(threads)
    if thread_note:
        print(thread_note)
    with limits:
        model = BernoulliRBM(V, H, persistent=True, k=1, seed=0)
        opt = refvae.SGD(0.01, momentum=0.9)
        X_dev = B.asarray(X)
        times = {"refvae": []} if SkRBM is None else {"refvae": [], "sklearn": []}
        sk_dtype = None
        for epoch in range(epochs):
            B.synchronize()
            h = refvae.fit(model, X_dev, epochs=1, batch_size=BATCH, optimizer=opt, binarize=None, seed=epoch,
                           progress=False)
            times["refvae"].append(h["seconds"][0])
            if SkRBM is not None:
                sk = SkRBM(n_components=H, learning_rate=0.01, batch_size=BATCH, n_iter=1, random_state=epoch)
                t0 = time.perf_counter()
                sk.fit(X)
                times["sklearn"].append(time.perf_counter() - t0)
                sk_dtype = str(sk.components_.dtype)
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))

        steps = -(-n // BATCH)
        one = 2 * n * V * H                                   # one product over the epoch (last batch included)
        gflop = gflop_refvae = 5 * one / 1e9
        rates = {"refvae": matmul_rate(B, rbm_shapes(BATCH))}
        if SkRBM is not None:
            if B.name == "numpy" and sk_dtype == "float32":
                rates["sklearn"] = rates["refvae"]
            else:
                with refvae.use_backend("numpy") as host:
                    rates["sklearn"] = matmul_rate(host, rbm_shapes(BATCH), sk_dtype)
        info = machine_info(B)

    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    result = {**info, "backend": args.backend, "threads": threads, "thread_note": thread_note,
              "n_train": n, "batch_size": BATCH, "steps_per_epoch": steps, "epochs_measured": epochs - 1,
              "quick": args.quick, "seconds_per_epoch": med, "gflop_per_epoch": gflop,
              "refvae_executed_gflop_per_epoch": gflop_refvae, "matmul_gflops": rates,
              "gflops": {k: gflop / v for k, v in med.items()},
              "fraction_of_matmul": {k: gflop / v / rates[k] for k, v in med.items()},
              "refvae_executed_fraction_of_matmul": gflop_refvae / med["refvae"] / rates["refvae"], "times": times}
    if "sklearn" in med:
        result.update(sklearn=sklearn.__version__, sklearn_dtype=sk_dtype,
                      ratio_refvae_over_sklearn=med["refvae"] / med["sklearn"])

    print()
    print(f"| implementation | s/epoch (median of {epochs - 1}) | GFLOP/s | fraction of matmul rate "
          "| executed GFLOP/s | executed fraction |")
    print("|---|---|---|---|---|---|")
    for k, v in med.items():
        g_exec = gflop_refvae if k == "refvae" else gflop
        print(f"| {k} | {v:.3f} | {gflop / v:.1f} | {gflop / v / rates[k]:.0%} "
              f"| {g_exec / v:.1f} | {g_exec / v / rates[k]:.0%} |")
    print(f"\n{gflop:.1f} GFLOP per epoch in the algorithm's 5 matrix products "
          f"({gflop_refvae:.1f} executed by refvae); "
          "matmul rate on these shapes: " + ", ".join(f"{k} {r:.1f} GFLOP/s" for k, r in rates.items())
          + (f"; scikit-learn dtype {sk_dtype}; refvae / scikit-learn = {result['ratio_refvae_over_sklearn']:.2f}"
             if "sklearn" in med else "") + f"; BLAS threads: {threads}" + (" (not controlled)" if thread_note else ""))
    write_result(result, "bench_rbm", args.backend, args.quick, args.json)
    return result


if __name__ == "__main__":
    main()
