"""Test negative ELBO of refvae's VAE and of the independent PyTorch implementation, same schedule, several seeds.

    python benchmarks/vae_vs_torch.py --seeds 0 1 2 --json benchmarks/results/vae_vs_torch.json

784-400-20 ReLU, Bernoulli decoder, batch 128, Adam 1e-3, dynamic binarisation, 10 epochs on mnist-10k;
the test -ELBO on one fixed binarisation of the 2,000 test images (refvae.evaluation.binarize_fixed),
averaged over 10 noise draws. refvae also reports its importance-weighted NLL (k = 5000). The PyTorch side
runs when torch is installed (pip install 'refvae[bench]').
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import refvae


def run_refvae(seed, epochs, k):
    train, test = refvae.datasets.load("mnist-10k")
    model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=seed)
    h = refvae.fit(model, train, epochs=epochs, batch_size=128, optimizer=refvae.Adam(1e-3), binarize="dynamic",
                   seed=seed, progress=False)
    ev = refvae.vae.evaluate_vae(model, test, k=k, seed=seed)
    return {"seed": seed, "test_negative_elbo": -ev["elbo"], "test_nll_iw": -ev["log_likelihood"], "k": k,
            "train_loss": h["train_loss"], "seconds_per_epoch": h["seconds"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    refvae.set_backend(args.backend)
    out = {"command": "python benchmarks/vae_vs_torch.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d"),
           "machine": platform.platform(), "refvae": [run_refvae(s, args.epochs, args.k) for s in args.seeds]}
    try:
        sys.path.insert(0, str(Path(__file__).parent))
        import torch_vae

        out["torch"] = [torch_vae.main(["--seed", str(s), "--epochs", str(args.epochs), "--threads", "2"])
                        for s in args.seeds]
    except ImportError as err:
        print(f"PyTorch side skipped ({err})")
    for side in ("refvae", "torch"):
        if side in out:
            vals = [r["test_negative_elbo"] for r in out[side]]
            out[f"{side}_mean"] = statistics.mean(vals)
            out[f"{side}_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            print(f"{side}: test -ELBO {out[f'{side}_mean']:.2f} ± {out[f'{side}_sd']:.2f} over seeds {args.seeds}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
