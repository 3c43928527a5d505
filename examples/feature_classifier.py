"""Train the feature classifier that refvae's sample-quality measures use, and write its weights.

A 784-128-64-10 ReLU classifier (``refvae.features.FeatureClassifier``), trained with refvae's own layers and
Adam on mnist-10k's 8,000 training images and their labels, each also shifted by one and two pixels up, down,
left and right (9 copies, 72,000 images: without them the classifier fits its training images perfectly after a
few epochs and stops at 95% test accuracy; with them, 97%). Its 64 penultimate activations are the features of
``refvae.features.classifier_features``. The test accuracy on mnist-10k's other 2,000 images goes into the file.

    python examples/feature_classifier.py                       # rewrites refvae/data/mnist_classifier.npz
    python examples/feature_classifier.py --out /tmp/clf.npz    # anywhere else
    python examples/feature_classifier.py --quick --out /tmp/clf.npz   # seconds (CI)

The shipped file was made by the first command (numpy backend); the features every run measures with are that
file's, so retrain only on purpose: a new file changes every Frechet distance.
"""

import argparse
import time
from pathlib import Path

import numpy as np

import refvae
from refvae import datasets
from refvae.cli import use_backend_or_exit
from refvae.features import CLASSIFIER_PATH, train_classifier


SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (-2, 0), (0, 2), (0, -2))


def shifted(x, dx: int, dy: int):
    """Images x (n, 784) moved dx pixels right and dy pixels down; the uncovered border is black (0)."""
    images = np.roll(x.reshape(-1, 28, 28), (dy, dx), axis=(1, 2))
    if dy > 0:
        images[:, :dy, :] = 0
    elif dy < 0:
        images[:, dy:, :] = 0
    if dx > 0:
        images[:, :, :dx] = 0
    elif dx < 0:
        images[:, :, dx:] = 0
    return images.reshape(-1, 784)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1,000 images, 2 epochs")
    p.add_argument("--out", default=None, help=f"where to write the classifier (default: {CLASSIFIER_PATH}, the one "
                   "the package ships; with --quick: runs/feature_classifier/quick.npz, so that a smoke test never "
                   "replaces the shipped classifier)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = "runs/feature_classifier/quick.npz" if args.quick else str(CLASSIFIER_PATH)
    use_backend_or_exit(p, args.backend)
    (x, y), (xt, yt) = datasets.load("mnist-10k", labels=True)
    epochs = args.epochs
    if args.quick:
        x, y, xt, yt, epochs = x[:1000], y[:1000], xt[:500], yt[:500], 2
    x_aug = np.concatenate([shifted(x, dx, dy) for dx, dy in SHIFTS])        # (9 n, 784)
    y_aug = np.tile(y, len(SHIFTS))
    start = time.perf_counter()
    model = train_classifier(x_aug, y_aug, hidden=(128, 64), epochs=epochs, batch_size=128, lr=1e-3, seed=args.seed,
                             progress=True)
    seconds = time.perf_counter() - start
    train_acc, test_acc = model.accuracy(x, y), model.accuracy(xt, yt)
    meta = {"train_accuracy": train_acc, "test_accuracy": test_acc, "n_train": int(x.shape[0]),
            "n_test": int(xt.shape[0]), "dataset": "mnist-10k", "augmentation": "shifts (dx, dy) " + str(list(SHIFTS)),
            "epochs": epochs, "batch_size": 128,
            "optimizer": "Adam(1e-3)", "seed": args.seed, "backend": refvae.get_backend().name,
            "made_by": "python examples/feature_classifier.py" + (" --quick" if args.quick else "")}
    path = model.save(Path(args.out), meta)
    print(f"feature classifier 784-128-64-10: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} "
          f"({xt.shape[0]} test images), {seconds:.1f} s; wrote {path}")


if __name__ == "__main__":
    main()
