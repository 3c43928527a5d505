"""The training loop shared by every model.

``fit`` needs nothing from a model but ``params`` (name -> array) and ``loss_and_grads(batch)``
returning ``(loss, grads)``. It uses, when the model has them:

* ``model.rng`` — reseeded at the start of every epoch from (seed, epoch), so a run resumed from a
  checkpoint continues exactly as the uninterrupted run would have;
* ``model.loss(batch)`` — for the validation loss (else ``loss_and_grads(batch)[0]``);
* ``model.last_terms`` — a dict of per-batch numbers (e.g. the ELBO's reconstruction and KL
  terms), averaged per epoch into the history as ``train_<name>``;
* ``model.config``, ``model.checkpoint_arrays()``, ``model.set_params()`` — for checkpoints;
* ``model.validate_data(X)`` — to check data once (else the model checks each batch itself);
* ``model.epoch_diagnostics(X_subset)`` — a dict of numbers recorded in the history after every epoch,
  on a fixed subset of the training data (the VAE records its aggregate-posterior mismatch KL);
* ``model.align_to_prior(X)`` — with ``align=...`` (the VAE's alignment of its aggregate posterior).

The data moves to the device once; every random number (shuffling, binarisation, model noise)
comes from the backend's generator seeded by ``(seed, epoch, stream)``.
"""

from __future__ import annotations

import math
import time

from .backend import get_backend
from .checkpoint import CheckpointError, kind_of, load_checkpoint, save_checkpoint, split_prefix
from .validation import DataError, check_positive_int, values_already_checked

__all__ = ["BINARIZE", "TrainingError", "fit"]

BINARIZE = (None, "static", "dynamic")
ALIGN = (None, "init", "epoch")
MONITOR_SIZE = 1000  # examples in the fixed subset for epoch_diagnostics

# Independent random streams within an epoch: rng((seed, epoch, stream)).
_SHUFFLE, _BINARIZE, _MODEL_NOISE, _VALIDATION, _MONITOR = 0, 1, 2, 3, 4
_STATIC_EPOCH = 2**31 - 1  # the "epoch" of the one static binarisation


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


def _history_from(meta_history):
    return {k: list(v) for k, v in meta_history.items()}


def fit(model, X, *, epochs, batch_size, optimizer, seed=0, binarize=None, X_val=None, checkpoint=None,
        progress=True, resume=False, callbacks=(), align=None, align_epochs=3, verbose=None):
    """Train ``model`` on ``X`` with minibatches; returns the history.

    Parameters
    ----------
    model
        Anything with ``params`` and ``loss_and_grads(batch) -> (loss, grads)``.
    X : array (n, d)
        Training data, NumPy or backend array; moved to the device once.
    epochs : int
        Total number of epochs (when resuming, the epochs already done count).
    batch_size : int
        Examples per step; the last, smaller batch of an epoch is kept.
    optimizer : refvae.Adam or refvae.SGD
    seed : int
        Seeds shuffling, binarisation and the model's noise, per epoch.
    binarize : {None, "static", "dynamic"}
        None: use X as it is. "static": one fixed Bernoulli sample of X (x_bin ~ Bernoulli(X)),
        drawn once. "dynamic": a fresh Bernoulli sample of every batch.
    X_val : array (m, d), optional
        Validation data; its mean loss is recorded after every epoch (binarised once, statically,
        when ``binarize`` is set, so that the number is comparable across epochs).
    checkpoint : path, optional
        Written atomically after every epoch (model, optimiser, history, position).
    progress : bool
        Show a tqdm progress bar with the loss and speed.
    verbose : bool, optional
        Print one summary line per epoch (loss, validation loss, seconds); default: as ``progress``.
    resume : bool
        Continue from ``checkpoint`` if it exists (same model architecture, data and settings).
    callbacks : iterable of callables
        Each is called as ``cb(model, history)`` after every epoch (e.g. to record diagnostics).
    align : {None, "init", "epoch"}
        Align the aggregate posterior to the prior on the training data with the model's
        ``align_to_prior(X)`` (a Gaussian VAE's, :func:`refvae.align_to_prior`): "init" once before training,
        "epoch" after each of the first
        ``align_epochs`` epochs. The decoder's function is unchanged; the optimiser's moment estimates
        are kept as they are.
    align_epochs : int
        With ``align="epoch"``: how many of the first epochs are followed by an alignment.

    Returns
    -------
    dict
        ``{"epoch": [...], "train_loss": [...], "val_loss": [...], "seconds": [...], ...}``, one entry
        per epoch; ``train_loss`` is the mean of the batch losses over the epoch.

    Raises
    ------
    TrainingError
        If a loss is NaN or infinite; names the epoch and step. The last checkpoint is left intact.
    """
    B = get_backend()
    xp = B.xp
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    verbose = progress if verbose is None else verbose
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"fit needs an optimizer with step(params, grads), such as refvae.Adam() or refvae.SGD(0.01); "
                        f"got {optimizer!r}")
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of {BINARIZE}, got {binarize!r}")
    if align not in ALIGN:
        raise ValueError(f"align must be one of {ALIGN}, got {align!r}")
    if align is not None:
        if not callable(getattr(model, "align_to_prior", None)):
            raise TypeError(f"align={align!r} needs a model with align_to_prior(X) (a Gaussian VAE); "
                            f"{type(model).__name__} has none")
        align_epochs = check_positive_int(align_epochs, "align_epochs")
    if not hasattr(model, "params") or not hasattr(model, "loss_and_grads"):
        raise TypeError("fit needs a model with .params and .loss_and_grads(batch)")
    X = _to_device_data(model, X, "X")
    n = X.shape[0]
    if X_val is not None:
        X_val = _to_device_data(model, X_val, "X_val")
    if binarize is not None:
        if float(xp.min(X)) < 0.0 or float(xp.max(X)) > 1.0:
            raise DataError(f"binarize={binarize!r} needs data in [0, 1] (they are probabilities)")
    if binarize == "static":
        X = B.rng((seed, _STATIC_EPOCH, _BINARIZE)).bernoulli(X)
    if X_val is not None and binarize is not None:
        X_val = B.rng((seed, _STATIC_EPOCH, _VALIDATION)).bernoulli(X_val)

    settings = {"seed": int(seed), "batch_size": batch_size, "binarize": binarize, "n_train": int(n)}
    if align is not None:
        settings.update(align=align, align_epochs=align_epochs)
    history = {"epoch": [], "train_loss": [], "val_loss": [], "seconds": []}
    start_epoch = 0
    if resume and checkpoint is not None:
        try:
            arrays, meta = load_checkpoint(checkpoint)
        except CheckpointError:
            arrays = meta = None
            import os
            if os.path.exists(checkpoint):
                raise
        if meta is not None:
            start_epoch, history = _restore(model, optimizer, arrays, meta, settings, checkpoint)
            if start_epoch > epochs:
                raise TrainingError(f"{checkpoint} already holds {start_epoch} epochs, more than the {epochs} asked "
                                    f"for: ask for more than {start_epoch} epochs to continue it, or start a new run")

    X_monitor = None
    if hasattr(model, "epoch_diagnostics"):
        pick = B.rng((seed, 0, _MONITOR)).permutation(n)[:min(MONITOR_SIZE, n)]
        X_monitor = xp.take(X, pick, axis=0)
    if align == "init" and start_epoch == 0:
        model.align_to_prior(X)

    steps_per_epoch = math.ceil(n / batch_size)
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        if hasattr(model, "rng"):
            model.rng = B.rng((seed, epoch, _MODEL_NOISE))
        rng = B.rng((seed, epoch, _SHUFFLE))
        order = rng.permutation(n)
        binarizer = B.rng((seed, epoch, _BINARIZE)) if binarize == "dynamic" else None
        total, sums = 0.0, {}
        bar = _progress_bar(progress, steps_per_epoch, f"epoch {epoch + 1}/{epochs}")
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:min((step + 1) * batch_size, n)]
            batch = xp.take(X, idx, axis=0)                      # (batch, d), on the device
            if binarizer is not None:
                batch = binarizer.bernoulli(batch)
            with values_already_checked():                       # X was validated once, above
                loss, grads = model.loss_and_grads(batch)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at epoch {epoch + 1}, step {step + 1} of {steps_per_epoch}: "
                    "lower the learning rate or check the data; "
                    + _last_good_state(checkpoint)
                )
            optimizer.step(model.params, grads)
            weight = batch.shape[0] / n
            total += loss * weight
            for k, v in getattr(model, "last_terms", {}).items():
                sums[k] = sums.get(k, 0.0) + v * weight
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                bar.update(1)
        if bar is not None:
            bar.close()
        val = _mean_loss(model, X_val, batch_size, B.rng((seed, epoch, _VALIDATION))) if X_val is not None else None
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(total)
        history["val_loss"].append(val)
        B.synchronize()                                          # a GPU epoch ends when its queued work does
        history["seconds"].append(time.perf_counter() - t0)
        for k, v in sums.items():
            history.setdefault(f"train_{k}", []).append(v)
        if align == "epoch" and epoch < align_epochs:
            model.align_to_prior(X)
        if X_monitor is not None:
            with values_already_checked():
                diagnostics = model.epoch_diagnostics(X_monitor)
            for k, v in diagnostics.items():
                history.setdefault(k, []).append(v)
        for cb in callbacks:
            cb(model, history)
        if verbose:
            msg = f"epoch {epoch + 1}/{epochs}: train loss {total:.4f}"
            msg += f", validation loss {val:.4f}" if val is not None else ""
            msg += f" ({history['seconds'][-1]:.2f} s)"
            _write(msg)
        if checkpoint is not None:
            _save(checkpoint, model, optimizer, history, epoch + 1, settings)
    return history


def _last_good_state(checkpoint) -> str:
    """Where the last good state is, naming only a file that exists."""
    import os

    if checkpoint is None:
        return "no checkpoint was being written"
    if os.path.exists(checkpoint):
        return f"the last good state (the last completed epoch) is in {checkpoint}"
    return f"no epoch had completed, so there is no checkpoint yet (it would have been {checkpoint})"


def _to_device_data(model, X, name):
    validate = getattr(model, "validate_data", None)
    if validate is not None:
        return validate(X, name=name)
    B = get_backend()
    X = B.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (n, d); got shape {tuple(X.shape)}")
    return X


def _mean_loss(model, X, batch_size, rng):
    """Mean loss per example over X, in batches, with the model's noise from ``rng``."""
    saved = getattr(model, "rng", None)
    if saved is not None:
        model.rng = rng
    try:
        n = X.shape[0]
        total = 0.0
        for i in range(0, n, batch_size):
            batch = X[i:min(i + batch_size, n), :]
            with values_already_checked():
                loss = model.loss(batch) if hasattr(model, "loss") else model.loss_and_grads(batch)[0]
            total += loss * batch.shape[0] / n
        return total
    finally:
        if saved is not None:
            model.rng = saved


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def _write(msg):
    from tqdm.auto import tqdm
    tqdm.write(msg)


def _save(path, model, optimizer, history, epochs_done, settings):
    opt_state = optimizer.state_dict()
    arrays = dict(model.checkpoint_arrays())
    arrays.update({f"optimizer/{k}": v for k, v in opt_state["arrays"].items()})
    meta = {"kind": kind_of(model), "config": getattr(model, "config", {}),
            "training": {"epochs_done": epochs_done, "settings": settings, "history": history,
                         "optimizer": {"kind": type(optimizer).__name__, **opt_state["meta"]}}}
    save_checkpoint(path, arrays, meta)


def _restore(model, optimizer, arrays, meta, settings, path):
    training = meta.get("training")
    if training is None:
        raise CheckpointError(f"{path} holds a model but no training state: it cannot be resumed (start a new run)")
    if meta.get("kind") != kind_of(model) or meta.get("config") != getattr(model, "config", {}):
        raise CheckpointError(
            f"cannot resume from {path}: it holds a {meta.get('kind')} with config {meta.get('config')}, "
            f"but the model is a {type(model).__name__} with config {getattr(model, 'config', {})}"
        )
    if training["settings"] != settings:
        raise CheckpointError(
            f"cannot resume from {path}: it was trained with {training['settings']}, this run uses {settings}"
        )
    if training["optimizer"]["kind"] != type(optimizer).__name__:
        raise CheckpointError(f"cannot resume from {path}: it used {training['optimizer']['kind']}, "
                              f"this run uses {type(optimizer).__name__}")
    model.set_params(split_prefix(arrays, "model"))
    if hasattr(model, "set_state"):          # e.g. an RBM's persistent chains
        model.set_state(split_prefix(arrays, "state"))
    optimizer.load_state_dict({"meta": training["optimizer"], "arrays": split_prefix(arrays, "optimizer")})
    return int(training["epochs_done"]), _history_from(training["history"])
