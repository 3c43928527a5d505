"""Peak resident memory of a 10-epoch training run, and its resident memory after every epoch (no growth expected).

    python benchmarks/memory.py --model vae [--epochs 10] [--json out.json]   # 784-400-20 VAE, Adam, batch 128
    python benchmarks/memory.py --model pcd [--epochs 10] [--json out.json]   # 784-500 RBM, PCD-1, batch 100

Linux only (reads /proc/self/statm and ru_maxrss). The peak includes the interpreter, NumPy, SciPy and the
embedded data set (about 60 MiB before any model exists).
"""

import argparse
import json
import resource
from pathlib import Path

import refvae


def rss_mib():
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["vae", "pcd"], default="vae")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    train, test = refvae.datasets.load("mnist-10k")
    before = rss_mib()
    per_epoch = []
    record = [lambda m, h: per_epoch.append(rss_mib())]
    if args.model == "vae":
        model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
        refvae.fit(model, train, epochs=args.epochs, batch_size=128, optimizer=refvae.Adam(1e-3), binarize="dynamic",
                   X_val=test, progress=False, callbacks=record)
    else:
        from rbm import BernoulliRBM

        model = BernoulliRBM(784, 500, seed=0, persistent=True, k=1)
        model.init_visible_bias(train)
        refvae.fit(model, train, epochs=args.epochs, batch_size=100, optimizer=refvae.SGD(0.01, momentum=0.9),
                   binarize="dynamic", progress=False, callbacks=record)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"model": args.model, "epochs": args.epochs, "rss_mib_before_training": before,
              "rss_mib_after_each_epoch": per_epoch, "peak_rss_mib": peak,
              "growth_mib_epoch2_to_last": per_epoch[-1] - per_epoch[1] if len(per_epoch) > 2 else None}
    print(f"{args.model}: {before:.1f} MiB before training;", " ".join(f"{v:.1f}" for v in per_epoch),
          f"MiB after each epoch; peak {peak:.1f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
