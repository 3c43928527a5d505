"""Benchmark: refvae's VAE against the equivalent PyTorch model, epochs run alternately.

    python benchmarks/bench_vae.py [--backend numpy|cupy] [--batch-size 128] [--epochs 7] [--json out.json]

784-400-20 ReLU, Bernoulli likelihood, Adam 1e-3, float32, dynamic binarisation, mnist-10k (8,000 images).
Both run on the same threads (torch.set_num_threads = the CPU count NumPy's BLAS sees unless --threads).
Seconds per epoch are the median over the epochs after the first (the warm-up). The model's floating-point
work per epoch is counted from the layer shapes (matrix products only: 2*in*out per example for the
forward pass, the same for dW, and again for dx except at the data); the achieved rate is set against the
matrix-multiply rate measured in this process on the same shapes (the step's matmuls in a loop).
With --backend cupy the PyTorch side runs on CUDA and every timing is synchronised.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import refvae

sys.path.insert(0, str(Path(__file__).parent))
from common import matmul_rate, write_result  # noqa: E402 - benchmarks/ is on the path only now


def vae_flops_per_example(x_dim=784, hidden=400, z_dim=20):
    """Matrix-product FLOPs of one training step per example (forward + backward)."""
    layers = [(x_dim, hidden), (hidden, z_dim), (hidden, z_dim), (z_dim, hidden), (hidden, x_dim)]
    fwd = sum(2 * a * b for a, b in layers)
    dW = fwd
    dx = fwd - 2 * x_dim * hidden          # no gradient for the data
    return fwd + dW + dx


def vae_shapes(batch, x_dim=784, hidden=400, z_dim=20):
    """The (m, k, n) shapes of one training step's matrix products: forward, dx, and dW (as (in, batch, out))."""
    return [(batch, x_dim, hidden), (batch, hidden, 2 * z_dim), (batch, z_dim, hidden), (batch, hidden, x_dim),
            (x_dim, batch, hidden), (hidden, batch, x_dim), (batch, x_dim, hidden)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=7, help="1 warm-up + the measured ones (>= 6)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    B = refvae.set_backend(args.backend)
    train, _ = refvae.datasets.load("mnist-10k")
    n = train.shape[0]
    model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
    opt = refvae.Adam(1e-3)

    torch_side = None
    if not args.no_torch:
        try:
            import torch
            import torch_vae
        except ImportError as err:
            print(f"PyTorch side skipped: {err} (pip install 'refvae[bench]')")
        else:
            threads = args.threads or len(os.sched_getaffinity(0))
            torch.set_num_threads(threads)
            device = "cuda" if args.backend == "cupy" else "cpu"
            tmodel = torch_vae.TorchVAE().to(device)
            topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
            tX = torch.from_numpy(train).to(device)
            gen = torch.Generator(device=device).manual_seed(0)
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            torch_side = (torch, tmodel, topt, tX, gen, sync, threads, device)

    times = {"refvae": [], "torch": []}
    X_dev = B.asarray(train)
    for epoch in range(args.epochs):
        h = refvae.fit(model, X_dev, epochs=1, batch_size=args.batch_size, optimizer=opt, binarize="dynamic",
                       seed=epoch, progress=False)
        times["refvae"].append(h["seconds"][0])
        if torch_side is not None:
            torch, tmodel, topt, tX, gen, sync, threads, device = torch_side
            sync()
            t0 = time.perf_counter()
            torch_vae.train_epoch(tmodel, topt, tX, args.batch_size, gen)
            sync()
            times["torch"].append(time.perf_counter() - t0)
        print(f"epoch {epoch + 1}: refvae {times['refvae'][-1]:.3f} s"
              + (f", torch {times['torch'][-1]:.3f} s" if times["torch"] else ""))

    gflop = vae_flops_per_example() * n / 1e9
    peak = matmul_rate(B, vae_shapes(args.batch_size))
    med = {k: statistics.median(v[1:]) for k, v in times.items() if v}
    result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "cpus": len(os.sched_getaffinity(0)),
              "backend": args.backend, "batch_size": args.batch_size, "epochs_measured": args.epochs - 1,
              "seconds_per_epoch": med, "gflop_per_epoch": gflop, "matmul_gflops": peak,
              "refvae_gflops": gflop / med["refvae"], "refvae_fraction_of_matmul": gflop / med["refvae"] / peak,
              "times": times}
    if "torch" in med:
        result.update(torch=torch_side[0].__version__, torch_threads=torch_side[6],
                      ratio_refvae_over_torch=med["refvae"] / med["torch"],
                      torch_fraction_of_matmul=gflop / med["torch"] / peak)
    print()
    print(f"| implementation | s/epoch (median of {args.epochs - 1}) | GFLOP/s | fraction of matmul rate |")
    print("|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.3f} | {gflop / v:.1f} | {gflop / v / peak:.0%} |")
    print(f"\n{gflop:.1f} GFLOP per epoch (matrix products); matmul rate on these shapes {peak:.1f} GFLOP/s"
          + (f"; refvae / PyTorch = {result['ratio_refvae_over_torch']:.2f}" if "torch" in med else ""))
    if args.json:
        write_result(result, "bench_vae", args.backend, path=args.json)
    return result


if __name__ == "__main__":
    main()
