"""Peak resident memory of a 10-epoch VAE run, and its resident memory after every epoch (no growth expected).

    python benchmarks/memory_vae.py [--epochs 10] [--json out.json]
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
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    train, test = refvae.datasets.load("mnist-10k")
    model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
    per_epoch = []
    refvae.fit(model, train, epochs=args.epochs, batch_size=128, optimizer=refvae.Adam(1e-3), binarize="dynamic",
               X_val=test, progress=False, callbacks=[lambda m, h: per_epoch.append(rss_mib())])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"epochs": args.epochs, "rss_mib_after_each_epoch": per_epoch, "peak_rss_mib": peak,
              "growth_mib_epoch2_to_last": per_epoch[-1] - per_epoch[1] if len(per_epoch) > 2 else None}
    print(" ".join(f"{v:.1f}" for v in per_epoch), f"MiB after each epoch; peak {peak:.1f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
