"""Fixed feature maps for measuring sample quality on MNIST-like images (28 x 28 grey levels in [0, 1]).

The Frechet distance and precision/recall (:mod:`refvae.evaluation`) compare images through features. Two
feature maps are offered, both needing nothing from outside the package:

- :func:`classifier_features`: the penultimate layer of a small classifier, 784-128-64-10 with ReLUs, trained
  with refvae's own layers on mnist-10k's 8,000 training images and their labels (each also shifted by one and
  two pixels; test accuracy 0.974 on the 2,000 test images). Its weights ship with the package
  (``refvae/data/mnist_classifier.npz``, a refvae checkpoint: no pickle), so every run measures with the same
  features; :func:`load_classifier` gives the classifier itself, with its test accuracy. This is the FID recipe
  (features of a network trained to recognise the data) at MNIST's scale.
- :class:`PCAFeatures`: the top principal components of a reference set: model-free, so a result that holds on
  both feature maps is not an artefact of the classifier.

:class:`FeatureClassifier` is the classifier (forward, hand-written backward of the mean softmax cross-entropy,
checked against central differences in ``refvae gradcheck``); :func:`train_classifier` trains it, and
``python examples/feature_classifier.py`` regenerates the shipped weights.

References
----------
M. Heusel et al., "GANs trained by a two time-scale update rule converge to a local Nash equilibrium", NeurIPS
2017 (features of a trained classifier for the Frechet distance).
"""

from __future__ import annotations

import math
from pathlib import Path

from .backend import get_backend
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, split_prefix
from .gradcheck import gradcheck
from .layers import MLP, ParameterSlots
from .numerics import logsumexp
from .validation import as_data, check_positive_int

__all__ = ["CLASSIFIER_PATH", "FeatureClassifier", "PCAFeatures", "classifier_features", "load_classifier",
           "train_classifier"]

#: The shipped classifier (a refvae checkpoint: arrays and a JSON document, read without pickle).
CLASSIFIER_PATH = Path(__file__).parent / "data" / "mnist_classifier.npz"

_KIND = "FeatureClassifier"


class FeatureClassifier(ParameterSlots):
    """A softmax classifier x (batch, x_dim) -> class logits (batch, n_classes) through ReLU hidden layers.

        h = relu(... relu(x W_0 + b_0) ...)        the features, (batch, hidden[-1])
        logits = h W_out + b_out                   (batch, n_classes)
        loss = mean_i [ logsumexp_c logits_ic - logits_i,y_i ]     (softmax cross-entropy)

    Parameters
    ----------
    x_dim : int
    n_classes : int
    hidden : tuple of int
        Widths of the hidden layers; the last one is the feature layer.
    seed : int
    dtype : str
    """

    def __init__(self, x_dim: int = 784, n_classes: int = 10, hidden=(128, 64), seed: int = 0, dtype="float32"):
        B = get_backend()
        self.backend, self.xp = B, B.xp
        self.dtype_name = B.dtype_name(dtype)
        self.x_dim, self.n_classes = check_positive_int(x_dim, "x_dim"), check_positive_int(n_classes, "n_classes")
        self.hidden = tuple(check_positive_int(h, "hidden width") for h in hidden)
        if not self.hidden:
            raise ValueError("FeatureClassifier needs at least one hidden layer (the features)")
        rng = B.rng(seed, host=True)
        self.body = MLP((self.x_dim, *self.hidden), activation="relu", final_activation=True, rng=rng,
                        dtype=self.dtype_name)
        self.head = MLP((self.hidden[-1], self.n_classes), final_activation=False, rng=rng, dtype=self.dtype_name)
        self.config = {"x_dim": self.x_dim, "n_classes": self.n_classes, "hidden": list(self.hidden)}

    def _slots(self):
        for part, mlp in (("body", self.body), ("head", self.head)):
            for i, lin in enumerate(mlp.linears):
                for key in lin.params:
                    yield f"{part}.{i}.{key}", lin.params, key

    def _data(self, x):
        return as_data(x, self.x_dim, self.dtype_name, backend=self.backend, name="x")

    def features(self, x):
        """The penultimate layer's activations, (batch, hidden[-1])."""
        h, _ = self.body.forward(self._data(x))
        return h

    def logits(self, x):
        """Class scores, (batch, n_classes)."""
        h, _ = self.body.forward(self._data(x))
        logits, _ = self.head.forward(h)
        return logits

    def predict(self, x):
        """The most likely class of each row, (batch,) int64."""
        return self.xp.argmax(self.logits(x), axis=1)

    def _one_hot(self, y):
        """Labels y (batch,) as rows of the identity, (batch, n_classes)."""
        xp, B = self.xp, self.backend
        classes = B.asarray(xp.arange(self.n_classes, dtype=xp.int64))
        y = xp.astype(B.asarray(y), xp.int64)
        return xp.astype(xp.reshape(y, (-1, 1)) == xp.reshape(classes, (1, -1)), self.backend.dtype(self.dtype_name))

    def loss(self, x, y) -> float:
        """The mean softmax cross-entropy of labels y (batch,) given x (batch, x_dim)."""
        logits = self.logits(x)
        onehot = self._one_hot(y)
        return float(self.xp.mean(logsumexp(logits, axis=1) - self.xp.sum(onehot * logits, axis=1)))

    def loss_and_grads(self, batch):
        """``batch = (x (batch, x_dim), y (batch,))`` -> (mean cross-entropy, grads of it)."""
        xp = self.xp
        x, y = batch
        x = self._data(x)
        n = x.shape[0]
        # forward
        h, body_caches = self.body.forward(x)                                    # (n, hidden[-1])
        logits, head_caches = self.head.forward(h)                              # (n, n_classes)
        log_norm = logsumexp(logits, axis=1)                                    # log sum_c exp logits_c, (n,)
        onehot = self._one_hot(y)                                            # (n, n_classes)
        loss = xp.mean(log_norm - xp.sum(onehot * logits, axis=1))
        # backward: d loss / d logits = (softmax(logits) - onehot) / n
        d_logits = (xp.exp(logits - xp.reshape(log_norm, (-1, 1))) - onehot) / n
        d_h, head_grads = self.head.backward(d_logits, head_caches)
        _, body_grads = self.body.backward(d_h, body_caches, need_dx=False)
        grads = {f"head.{k}": v for k, v in head_grads.items()}
        grads.update({f"body.{k}": v for k, v in body_grads.items()})
        return float(loss), grads

    def accuracy(self, x, y) -> float:
        """The share of rows whose predicted class is y."""
        xp = self.xp
        y = xp.astype(self.backend.asarray(y), xp.int64)
        return float(xp.mean(xp.astype(self.predict(x) == y, xp.float64)))

    def save(self, path, meta: dict | None = None) -> Path:
        """Write the weights (a refvae checkpoint, atomically) with ``meta`` (e.g. the test accuracy)."""
        arrays = {f"model/{k}": self.backend.to_numpy(v, copy=True) for k, v in self.params.items()}
        return save_checkpoint(path, arrays, {"kind": _KIND, "config": self.config, **(meta or {})})


def classifier_check(seed):
    """The classifier's loss gradient against central differences (float64)."""
    B = get_backend()
    rng = B.rng((seed, 7), host=True)
    model = FeatureClassifier(7, 4, hidden=(6, 5), seed=seed, dtype="float64")
    x = rng.normal((5, 7), "float64")
    y = B.asarray([0, 3, 1, 1, 2], dtype="int64")
    _, grads = model.loss_and_grads((x, y))
    return gradcheck(lambda p: model.loss(x, y), model.params, grads)


#: The gradient checks ``refvae gradcheck`` runs for this module (listed in ``refvae.app``).
CHECKS = {"FeatureClassifier softmax cross-entropy, 7-(6,5)-4": classifier_check}


def train_classifier(X, y, *, hidden=(128, 64), epochs: int = 30, batch_size: int = 128, lr: float = 1e-3,
                     seed: int = 0, progress: bool = False):
    """Train a :class:`FeatureClassifier` on images X (n, x_dim) with labels y (n,) by Adam; returns the model."""
    from .optim import Adam

    B = get_backend()
    xp = B.xp
    model = FeatureClassifier(X.shape[1], int(max(int(v) for v in B.to_numpy(B.asarray(y)))) + 1, hidden=hidden,
                              seed=seed)
    X = model._data(X)
    y = B.asarray(y)
    optimizer = Adam(lr)
    n = X.shape[0]
    epochs_iter = range(check_positive_int(epochs, "epochs"))
    if progress:
        from tqdm.auto import tqdm
        epochs_iter = tqdm(epochs_iter, desc="feature classifier", unit="epoch")
    for epoch in epochs_iter:
        order = B.rng((seed, epoch)).permutation(n)
        for i in range(0, n, batch_size):
            idx = order[i:min(i + batch_size, n)]
            _, grads = model.loss_and_grads((xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)))
            optimizer.step(model.params, grads)
    return model


def load_classifier(path=None) -> FeatureClassifier:
    """The shipped feature classifier (or one saved at ``path``), on the current backend; its file's
    document (test accuracy, how it was trained) is in ``model.meta``."""
    path = Path(path) if path is not None else CLASSIFIER_PATH
    if not path.is_file():
        raise FileNotFoundError(f"the feature classifier {path} does not exist: reinstall refvae, or run "
                                "python examples/feature_classifier.py to train one")
    arrays, meta = load_checkpoint(path)
    if meta.get("kind") != _KIND:
        raise ValueError(f"{path} is not a feature classifier (its kind is {meta.get('kind')!r}): pass a file written "
                         "by FeatureClassifier.save or examples/feature_classifier.py, or no path for the shipped one")
    config = meta["config"]
    try:
        model = FeatureClassifier(config["x_dim"], config["n_classes"], hidden=tuple(config["hidden"]))
        model.set_params(split_prefix(arrays, "model"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} does not describe a valid feature classifier (its config or arrays are "
                              f"wrong: {err!r}): pass a file written by FeatureClassifier.save") from err
    model.meta = meta
    return model


_SHIPPED = {}


def classifier_features(X, batch_size: int = 2000):
    """Features of images X (n, 784) in [0, 1] from the shipped classifier's penultimate layer, (n, 64)."""
    B = get_backend()
    key = B.name
    if key not in _SHIPPED:
        _SHIPPED.clear()
        _SHIPPED[key] = load_classifier()
    model = _SHIPPED[key]
    X = as_data(X, model.x_dim, model.dtype_name, backend=model.backend, unit_interval=True, name="X",
                range_fix="pass images with grey levels in [0, 1] (pixels / 255)")
    n = X.shape[0]
    parts = [model.features(X[i:min(i + batch_size, n), :]) for i in range(0, n, batch_size)]
    return B.xp.concat(parts, axis=0) if len(parts) > 1 else parts[0]


class PCAFeatures:
    """Projection onto the top ``dim`` principal components of a reference set: f(x) = (x - mean) V, (n, dim).

    Fit once on real data (e.g. the training images) and apply the same map to every set compared.
    """

    def __init__(self, X_ref, dim: int = 50):
        B = get_backend()
        xp = B.xp
        dim = check_positive_int(dim, "dim")
        X = B.asarray(X_ref, dtype="float64")
        if len(X.shape) != 2 or X.shape[0] < 2:
            raise ValueError(f"PCAFeatures needs a reference set of shape (n >= 2, d); got {tuple(X.shape)}")
        if dim > X.shape[1]:
            raise ValueError(f"dim={dim} is more than the data's {X.shape[1]} columns: choose dim <= {X.shape[1]}")
        self.mean = xp.mean(X, axis=0)
        centred = X - self.mean
        w, V = xp.linalg.eigh((centred.T @ centred) / (X.shape[0] - 1))      # ascending eigenvalues
        self.components = xp.flip(V[:, -dim:], axis=1)                      # (d, dim), largest variance first
        self.variances = xp.flip(w[-dim:], axis=0)
        total = float(xp.sum(w))
        self.explained = float(xp.sum(self.variances)) / total if total > 0 else math.nan

    def __call__(self, X):
        B = get_backend()
        return (B.asarray(X, dtype="float64") - self.mean) @ self.components
