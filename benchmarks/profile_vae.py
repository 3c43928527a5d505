"""Where a VAE training epoch spends its time: wall-clock per section, measured in context.

    python benchmarks/profile_vae.py [--backend numpy|cupy] [--epochs 4] [--json out.json]

784-400-20 ReLU, Bernoulli likelihood, batch 128, Adam 1e-3, dynamic binarisation, mnist-10k (as bench_vae.py).
Each section is timed by wrapping the function that computes it (refvae.vae.elbo's affine maps and their backward
passes, the
Bernoulli term with its gradient, ReLU, the KL term, Adam's fused update, the batch's binarisation), so the
numbers are those of a real epoch, with its caches and threads, not of the pieces run alone. The wrappers add a
few microseconds per call. "rest of the step" is the epoch minus the timed sections: taking the batch, the
reparameterisation, Python. With --backend cupy every section is synchronised before and after, which slows the
epoch but attributes the time correctly.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import refvae
from refvae import backend as backend_module
from refvae import optim as optim_module
from refvae import layers
from refvae.vae import elbo as vae_module

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402 - benchmarks/ is on the path only now

SECTIONS = [  # (owner, attribute, label)
    (vae_module, "_affine", "affine forward (x W + b)"),
    (vae_module, "_affine_backward", "affine backward (x^T dy, sum dy, dy W^T)"),
    (layers.ReLU, "forward", "ReLU forward"),
    (layers.ReLU, "backward", "ReLU backward"),
    (vae_module, "bernoulli_nll_with_grad", "Bernoulli -log p(x|z) and its gradient"),
    (vae_module, "kl_standard_normal", "KL term"),
    (vae_module, "kl_standard_normal_grad", "KL gradient"),
    (optim_module, "adam_step_sums", "Adam update"),
    (backend_module.Generator, "bernoulli", "binarisation (uniform draws, compare)"),
]


def instrument(sync):
    """Wrap every section's function; returns the dict of accumulated seconds per label."""
    seconds = defaultdict(float)
    for owner, attr, label in SECTIONS:
        original = getattr(owner, attr)

        def timed(*args, _original=original, _label=label, **kwargs):
            sync()
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            sync()
            seconds[_label] += time.perf_counter() - t0
            return out

        setattr(owner, attr, timed)
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--epochs", type=int, default=4, help="measured epochs, after one warm-up")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    B = refvae.set_backend(args.backend)
    train, _ = refvae.datasets.load("mnist-10k")
    X = B.asarray(train)
    model = refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)
    opt = refvae.Adam(1e-3)
    seconds = instrument(B.synchronize)
    settings = dict(batch_size=128, optimizer=opt, binarize="dynamic", progress=False)
    refvae.fit(model, X, epochs=1, **settings)                                   # warm-up
    seconds.clear()
    epoch = 0.0
    for e in range(args.epochs):
        epoch += refvae.fit(model, X, epochs=1, seed=e + 1, **settings)["seconds"][0]
    per_epoch = {k: v / args.epochs for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])}
    per_epoch["rest of the step"] = epoch / args.epochs - sum(per_epoch.values())
    print(f"| section ({args.backend}, mean of {args.epochs} epochs) | ms/epoch | share |")
    print("|---|---|---|")
    for k, v in per_epoch.items():
        print(f"| {k} | {1e3 * v:.1f} | {v / (epoch / args.epochs):.0%} |")
    print(f"| **epoch** | **{1e3 * epoch / args.epochs:.1f}** | |")
    if args.json:
        write_result({"date": time.strftime("%Y-%m-%d"), "backend": args.backend, "seconds_per_epoch": epoch / args.epochs,
                      "sections_seconds_per_epoch": per_epoch}, "profile_vae", args.backend, path=args.json)
    return per_epoch


if __name__ == "__main__":
    main()
