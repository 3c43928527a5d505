"""Before/after: the VAE training epoch of an earlier commit against the working tree, alternating in one process.

    python benchmarks/ab_vae.py --base REV [--epochs 21] [--measure fit|train] [--json out.json]

On a shared machine whose speed drifts from minute to minute, two separate benchmark runs do not compare. Here
``git archive REV refvae`` is unpacked into a temporary folder and imported as a second package,
``refvae_base``. The two versions then train identical models, one epoch each in turn, in the same process.
The machine's state is shared by each pair of epochs. The answer is the median over pairs of
(working tree / base), after one warm-up pair, with its quartiles. ``--measure fit`` (the default) times each whole
``fit`` call (with its per-epoch diagnostics); ``--measure train`` the epoch's training steps alone, as ``fit``
records them in ``history["seconds"]`` (what bench_vae.py compares with PyTorch). The last losses are printed, so a change
that should not alter the maths can be seen not to: losses equal, or equal up to rounding.
784-400-20 ReLU, Bernoulli, batch 128, Adam 1e-3, dynamic binarisation, mnist-10k, NumPy.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import refvae

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402 - benchmarks/ is on the path only now

ROOT = Path(__file__).resolve().parent.parent


def import_base(rev: str, folder: Path):
    """refvae at commit ``rev``, imported from ``folder`` as the package ``refvae_base``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "refvae"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):     # Python >= 3.10.12 / 3.11.4: refuse unsafe members
            tar.extractall(folder, filter="data")
        else:
            tar.extractall(folder)
    (folder / "refvae").rename(folder / "refvae_base")
    sys.path.insert(0, str(folder))
    import refvae_base  # noqa: PLC0415 - imported from the folder just made

    return refvae_base


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--epochs", type=int, default=21, help="epochs per version, the first a warm-up (>= 3)")
    p.add_argument("--measure", choices=["fit", "train"], default="fit",
                   help="time the whole fit call, or the training steps alone (history['seconds'])")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.epochs < 3:
        p.error("--epochs must be at least 3 (one warm-up and two pairs)")
    with tempfile.TemporaryDirectory() as tmp:
        base = import_base(args.base, Path(tmp))
        train, _ = refvae.datasets.load("mnist-10k")
        runs = {}
        for name, pkg in (("base", base), ("current", refvae)):
            pkg.set_backend("numpy")
            runs[name] = {"pkg": pkg, "model": pkg.GaussianVAE(784, 20, hidden=(400,), seed=0),
                          "opt": pkg.Adam(1e-3), "seconds": [], "loss": []}
        for epoch in range(args.epochs):
            for run in runs.values():
                t0 = time.perf_counter()
                history = run["pkg"].fit(run["model"], train, epochs=1, batch_size=128, optimizer=run["opt"],
                                         binarize="dynamic", seed=epoch, progress=False)
                wall = time.perf_counter() - t0
                run["seconds"].append(wall if args.measure == "fit" else history["seconds"][0])
                run["loss"].append(history["train_loss"][-1])
    ratios = sorted(c / b for c, b in zip(runs["current"]["seconds"][1:], runs["base"]["seconds"][1:]))
    q = statistics.quantiles(ratios, n=4)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "base": args.base, "measure": args.measure, "pairs": len(ratios),
              "median_seconds": {k: statistics.median(r["seconds"][1:]) for k, r in runs.items()},
              "ratio_current_over_base": statistics.median(ratios), "ratio_quartiles": [q[0], q[2]],
              "last_loss": {k: r["loss"][-1] for k, r in runs.items()},
              "first_loss": {k: r["loss"][0] for k, r in runs.items()},
              "seconds": {k: r["seconds"] for k, r in runs.items()}}
    for k in runs:
        print(f"{k:8s} median {result['median_seconds'][k]:.4f} s/epoch; loss after epoch 1 "
              f"{result['first_loss'][k]:.6f}, after epoch {args.epochs} {result['last_loss'][k]:.6f}")
    print(f"current / base: median {result['ratio_current_over_base']:.3f} over {len(ratios)} pairs "
          f"(quartiles {q[0]:.3f}, {q[2]:.3f})")
    if args.json:
        write_result(result, "ab_vae", "numpy", path=args.json)
    return result


if __name__ == "__main__":
    main()
