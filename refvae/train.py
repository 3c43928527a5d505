"""The training loop shared by every model, in the shape of pytorch/examples' ``train(epoch)``.

``fit`` needs nothing from a model but ``params`` (name -> array) and ``loss_and_grads(batch)`` returning
``(loss, grads)``. It uses, when the model has them:

* ``rng`` as a keyword of ``loss_and_grads`` (and of ``loss``) — the generator of the model's random numbers,
  which ``fit`` passes in, seeded by (seed, epoch): a run resumed from a checkpoint continues exactly as the
  uninterrupted run would have. ``fit`` never assigns a generator to the model;
* ``model.init_training_state(batch_size, rng)`` — called once before the first epoch of a new run (not when
  resuming: ``set_state`` restores the state from the checkpoint): creates state that training carries from step
  to step, such as an RBM's persistent chains;
* ``model.loss_grads_and_targets(batch, rng=...)`` — used instead of ``loss_and_grads`` when present; its third
  value, ``targets``, maps a parameter name to the value the parameter takes after the optimiser's step (the
  wake-sleep moment prior), written in place by :func:`train_step`;
* ``model.loss(batch)`` — for the validation loss (else ``loss_and_grads(batch)[0]``);
* ``model.last_terms`` — a dict of per-batch numbers (e.g. the ELBO's reconstruction and KL
  terms), averaged per epoch into the history as ``train_<name>``;
* ``model.config``, ``model.checkpoint_arrays()``, ``model.set_params()``, ``model.set_state()`` — for checkpoints;
* ``model.validate_data(X)`` — to check data once (else the model checks each batch itself);
* ``model.epoch_diagnostics(X_subset)`` — a dict of numbers recorded in the history after every epoch,
  on a fixed subset of the training data (the VAE records its aggregate-posterior mismatch KL);
* ``model.align_to_prior(X)`` — with ``align=...`` (the VAE's alignment of its aggregate posterior).

The data moves to the device once; every random number (shuffling, binarisation, model noise, training state)
comes from the backend's generator seeded by ``(seed, epoch, stream)``.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import time
from dataclasses import dataclass

from .backend import get_backend
from .checkpoint import CheckpointError, kind_of, load_checkpoint, restore_arrays, save_checkpoint, split_prefix
from .validation import DataError, check_positive_int, values_already_checked

__all__ = ["BINARIZE", "TrainingError", "fit", "setting_differences", "train_epoch", "train_step"]

BINARIZE = (None, "static", "dynamic")
ALIGN = (None, "init", "epoch")
MONITOR_SIZE = 1000  # examples in the fixed subset for epoch_diagnostics
#: A loss beyond this many nats per example is divergence, not learning: MNIST's 784 pixels cost at most 784 log 2
#: = 543 nats under a uniform model, and no model here starts a hundred million times worse.
DIVERGED = 1e10

# Independent random streams within an epoch: rng((seed, epoch, stream)).
_SHUFFLE, _BINARIZE, _MODEL_NOISE, _VALIDATION, _MONITOR, _STATE = 0, 1, 2, 3, 4, 5
_STATIC_EPOCH = 2**31 - 1  # the "epoch" of the one static binarisation


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


@dataclass
class _Run:
    """What every epoch of one call of ``fit`` shares: the data on the device and the settings."""

    X: object                 # (n, d) training data, binarised once if binarize="static"
    X_val: object             # (m, d) validation data or None
    X_monitor: object         # (<= MONITOR_SIZE, d) fixed subset for epoch_diagnostics, or None
    epochs: int
    batch_size: int
    seed: int
    binarize: str
    align: str
    align_epochs: int
    checkpoint: object
    settings: dict            # what a resumed run must share with the run it continues
    options: dict             # how the run was asked for (the command line's options): saved, never read by fit
    progress: bool
    verbose: bool
    callbacks: tuple


def fit(model, X, *, epochs, batch_size, optimizer, seed=0, binarize=None, X_val=None, checkpoint=None,
        progress=True, resume=False, callbacks=(), align=None, align_epochs=3, verbose=None, options=None):
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
    binarize : {None, "none", "static", "dynamic"}
        None (or "none", as on the command line): use X as it is. "static": one fixed Bernoulli sample of X (x_bin ~ Bernoulli(X)),
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
    options : dict, optional
        How the run was asked for, JSON-serialisable (the command line passes every option), saved with each
        checkpoint as ``meta["training"]["options"]`` for a later resume or evaluation to read; ``fit`` itself
        neither reads nor compares it.

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
    run = _prepare(model, X, X_val, epochs, batch_size, optimizer, seed, binarize, align, align_epochs,
                   checkpoint, progress, verbose, callbacks)
    run.options = _checked_options(options)
    start_epoch, history = _start_or_resume(model, optimizer, run, resume)
    for epoch in range(start_epoch, run.epochs):
        t0 = time.perf_counter()
        train_loss, terms = train_epoch(model, optimizer, run, epoch)
        val_loss = _validation_loss(model, run, epoch)
        get_backend().synchronize()                               # a GPU epoch ends when its queued work does
        _record(history, epoch, train_loss, val_loss, terms, time.perf_counter() - t0)
        _end_of_epoch(model, optimizer, run, epoch, history)
    return history


def train_epoch(model, optimizer, run, epoch):
    """One pass over the training data in a fresh random order: (mean loss, {term: mean}) over the epoch, each
    batch weighted by its size (the last batch may be smaller)."""
    B = get_backend()
    n = run.X.shape[0]
    steps = math.ceil(n / run.batch_size)
    order = B.rng((run.seed, epoch, _SHUFFLE)).permutation(n)
    binarizer = B.rng((run.seed, epoch, _BINARIZE)) if run.binarize == "dynamic" else None
    noise = B.rng((run.seed, epoch, _MODEL_NOISE))
    total, sums = 0.0, {}
    bar = _progress_bar(run.progress, steps, f"epoch {epoch + 1}/{run.epochs}")
    for step in range(steps):
        idx = order[step * run.batch_size:min((step + 1) * run.batch_size, n)]
        batch = B.xp.take(run.X, idx, axis=0)                     # (batch, d), on the device
        if binarizer is not None:
            batch = binarizer.bernoulli(batch)
        where = f"epoch {epoch + 1}, step {step + 1} of {steps}"
        loss = train_step(model, optimizer, batch, noise, where, run.checkpoint)
        weight = batch.shape[0] / n
        total += loss * weight
        for k, v in getattr(model, "last_terms", {}).items():
            sums[k] = sums.get(k, 0.0) + v * weight
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    return total, sums


def train_step(model, optimizer, batch, rng, where="", checkpoint=None) -> float:
    """One update: the model's loss and gradients on ``batch`` (its noise from ``rng``), the optimiser's step, then
    the parameters the model assigns directly (``loss_grads_and_targets``); returns the loss. A non-finite loss, or
    one beyond ``DIVERGED``, raises :class:`TrainingError` before anything is updated."""
    with values_already_checked():                                # the data were validated once, in fit
        if hasattr(model, "loss_grads_and_targets"):
            loss, grads, targets = model.loss_grads_and_targets(batch, **_rng_keyword(model.loss_grads_and_targets, rng))
        else:
            loss, grads = model.loss_and_grads(batch, **_rng_keyword(model.loss_and_grads, rng))
            targets = {}
    if not math.isfinite(loss) or abs(loss) > DIVERGED:
        raise TrainingError(f"the loss became {loss:.4g} at {where or 'a training step'} (the run diverged): lower "
                            "the learning rate or check the data; " + _last_good_state(checkpoint))
    optimizer.step(model.params, grads)
    if targets:                                                   # e.g. the moment prior: b <- logit(target)
        params = model.params
        for name, value in targets.items():
            params[name][...] = value
    return loss


def _rng_keyword(method, rng) -> dict:
    """``{"rng": rng}`` if ``method`` takes a generator, else ``{}`` (a model with no randomness of its own)."""
    return {"rng": rng} if _takes_rng(getattr(method, "__func__", method)) else {}


@functools.lru_cache(maxsize=None)
def _takes_rng(function) -> bool:
    """Whether ``function`` has an ``rng`` parameter (read once per function, not at every step)."""
    return "rng" in inspect.signature(function).parameters


def _prepare(model, X, X_val, epochs, batch_size, optimizer, seed, binarize, align, align_epochs, checkpoint,
             progress, verbose, callbacks) -> _Run:
    """Check the options, move the data to the device once (binarised once if static), pick the monitored subset."""
    B = get_backend()
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    binarize = None if binarize == "none" else binarize          # the command line's word for None
    _check_options(model, optimizer, binarize, align)
    align_epochs = check_positive_int(align_epochs, "align_epochs") if align is not None else align_epochs
    X = _to_device_data(model, X, "X")
    fingerprint = _data_fingerprint(X)                            # of the data as given, before any binarisation
    X_val = _to_device_data(model, X_val, "X_val") if X_val is not None else None
    if binarize is not None and (float(B.xp.min(X)) < 0.0 or float(B.xp.max(X)) > 1.0):
        raise DataError(f"binarize={binarize!r} needs data in [0, 1] (they are probabilities)")
    if binarize == "static":
        X = B.rng((seed, _STATIC_EPOCH, _BINARIZE)).bernoulli(X)
    if X_val is not None and binarize is not None:
        X_val = B.rng((seed, _STATIC_EPOCH, _VALIDATION)).bernoulli(X_val)
    n = X.shape[0]
    X_monitor = None
    if hasattr(model, "epoch_diagnostics"):
        pick = B.rng((seed, 0, _MONITOR)).permutation(n)[:min(MONITOR_SIZE, n)]
        X_monitor = B.xp.take(X, pick, axis=0)
    settings = {"seed": int(seed), "batch_size": batch_size, "binarize": binarize, "n_train": int(n),
                "data": fingerprint}
    if align is not None:
        settings.update(align=align, align_epochs=align_epochs)
    return _Run(X, X_val, X_monitor, epochs, batch_size, int(seed), binarize, align, align_epochs, checkpoint,
                settings, None, progress, progress if verbose is None else verbose, tuple(callbacks))


def _checked_options(options):
    """``options`` (for the checkpoints), refused now, not after the first epoch, if JSON cannot hold it."""
    import json

    if options is None:
        return None
    try:
        if not isinstance(options, dict):
            raise TypeError(type(options).__name__)
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"options must be a dict of JSON values (it is saved in the checkpoint); {err}") from None
    return options


def _check_options(model, optimizer, binarize, align) -> None:
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"fit needs an optimizer with step(params, grads), such as refvae.Adam() or refvae.SGD(0.01); "
                        f"got {optimizer!r}")
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of {BINARIZE} or 'none', got {binarize!r}")
    if align not in ALIGN:
        raise ValueError(f"align must be one of {ALIGN}, got {align!r}")
    if align is not None and not callable(getattr(model, "align_to_prior", None)):
        raise TypeError(f"align={align!r} needs a model with align_to_prior(X) (a Gaussian VAE); "
                        f"{type(model).__name__} has none")
    if not hasattr(model, "params") or not hasattr(model, "loss_and_grads"):
        raise TypeError("fit needs a model with .params and .loss_and_grads(batch)")


def _start_or_resume(model, optimizer, run, resume):
    """(first epoch, history): continued from the checkpoint when resuming one, else a new run, whose training
    state the model creates (``init_training_state``) and whose aggregate posterior is aligned if asked."""
    if resume and run.checkpoint is not None:
        try:
            arrays, meta = load_checkpoint(run.checkpoint)
        except CheckpointError:
            if os.path.exists(run.checkpoint):
                raise
        else:
            start_epoch, history = _restore(model, optimizer, arrays, meta, run.settings, run.checkpoint)
            if start_epoch > run.epochs:
                raise TrainingError(f"{run.checkpoint} already holds {start_epoch} epochs, more than the "
                                    f"{run.epochs} asked for: ask for more than {start_epoch} epochs to continue it, "
                                    "or start a new run")
            if run.verbose:
                _write(f"resuming {run.checkpoint} at epoch {start_epoch + 1} of {run.epochs}"
                       if start_epoch < run.epochs else
                       f"resuming {run.checkpoint}: all {run.epochs} epochs are done (ask for more epochs to train on)")
            return start_epoch, history
    if hasattr(model, "init_training_state"):
        model.init_training_state(run.batch_size, get_backend().rng((run.seed, 0, _STATE)))
    if run.align == "init":
        model.align_to_prior(run.X)
    return 0, {"epoch": [], "train_loss": [], "val_loss": [], "seconds": []}


def _validation_loss(model, run, epoch):
    """Mean loss per example over the validation data (None without it), the model's noise from its own stream."""
    if run.X_val is None:
        return None
    rng = get_backend().rng((run.seed, epoch, _VALIDATION))
    n = run.X_val.shape[0]
    total = 0.0
    for i in range(0, n, run.batch_size):
        batch = run.X_val[i:min(i + run.batch_size, n), :]
        with values_already_checked():
            if hasattr(model, "loss"):
                loss = model.loss(batch, **_rng_keyword(model.loss, rng))
            else:
                loss = model.loss_and_grads(batch, **_rng_keyword(model.loss_and_grads, rng))[0]
        total += loss * batch.shape[0] / n
    return total


def _record(history, epoch, train_loss, val_loss, terms, seconds) -> None:
    history["epoch"].append(epoch + 1)
    history["train_loss"].append(train_loss)
    history["val_loss"].append(val_loss)
    history["seconds"].append(seconds)
    for k, v in terms.items():
        history.setdefault(f"train_{k}", []).append(v)


def _end_of_epoch(model, optimizer, run, epoch, history) -> None:
    """After an epoch: alignment (align="epoch"), diagnostics, callbacks, the summary line, the checkpoint."""
    if run.align == "epoch" and epoch < run.align_epochs:
        model.align_to_prior(run.X)
    if run.X_monitor is not None:
        with values_already_checked():
            diagnostics = model.epoch_diagnostics(run.X_monitor)
        for k, v in diagnostics.items():
            history.setdefault(k, []).append(v)
    for cb in run.callbacks:
        cb(model, history)
    _refuse_non_finite(model, history, epoch, run.checkpoint)
    if run.verbose:
        msg = f"epoch {epoch + 1}/{run.epochs}: train loss {history['train_loss'][-1]:.4f}"
        val = history["val_loss"][-1]
        msg += f", validation loss {val:.4f}" if val is not None else ""
        msg += f" ({history['seconds'][-1]:.2f} s)"
        _write(msg)
    if run.checkpoint is not None:
        _save(run.checkpoint, model, optimizer, history, epoch + 1, run.settings, run.options)


def _refuse_non_finite(model, history, epoch, checkpoint) -> None:
    """Stop before a diverged state is saved as good: every number the epoch recorded (the validation loss, the
    diagnostics) must be finite and within DIVERGED, and every parameter finite."""
    from .validation import check_finite_params

    bad = [k for k, v in history.items() if k not in ("epoch", "seconds") and v and isinstance(v[-1], (int, float))
           and not (math.isfinite(v[-1]) and abs(v[-1]) <= DIVERGED)]
    try:
        check_finite_params(model.params, "the model")
    except ValueError:
        bad.append("the parameters")
    if bad:
        raise TrainingError(f"epoch {epoch + 1} ended with non-finite or diverging values ({', '.join(bad)}): "
                            "the run diverged; lower the learning rate or check the data; "
                            + _last_good_state(checkpoint))


def _last_good_state(checkpoint) -> str:
    """Where the last good state is, naming only a file that exists."""
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


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def _write(msg):
    from tqdm.auto import tqdm
    tqdm.write(msg)


def _save(path, model, optimizer, history, epochs_done, settings, options=None):
    opt_state = optimizer.state_dict()
    arrays = dict(model.checkpoint_arrays())
    arrays.update({f"optimizer/{k}": v for k, v in opt_state["arrays"].items()})
    meta = {"kind": kind_of(model), "config": getattr(model, "config", {}),
            "training": {"epochs_done": epochs_done, "settings": settings, "history": history,
                         "optimizer": {"kind": type(optimizer).__name__, **opt_state["meta"]}}}
    if options is not None:
        meta["training"]["options"] = options
    save_checkpoint(path, arrays, meta)


def setting_differences(saved: dict, current: dict, prefix: str = "") -> list:
    """``name=saved (this run: current)`` for every setting the two runs do not share. A setting an older
    checkpoint did not record is not compared."""
    return [f"{prefix}{k}={saved[k]!r} (this run: {current.get(k)!r})" for k in saved
            if saved[k] != current.get(k)]


def _data_fingerprint(X) -> list:
    """Two sums of the training data (float64, 10 significant digits): a resumed run must train on the same
    data, not only on data of the same shape."""
    B = get_backend()
    xp = B.xp
    sums = B.to_numpy(xp.stack([xp.sum(X, dtype=xp.float64), xp.sum(X[:, ::13], dtype=xp.float64)]))
    return [float(f"{float(v):.10g}") for v in sums]


def _history_from(meta_history):
    return {k: list(v) for k, v in meta_history.items()}


def _restore(model, optimizer, arrays, meta, settings, path):
    training = meta.get("training")
    if training is None:
        raise CheckpointError(f"{path} holds a model but no training state: it cannot be resumed (start a new run)")
    if meta.get("kind") != kind_of(model) or meta.get("config") != getattr(model, "config", {}):
        raise CheckpointError(
            f"cannot resume from {path}: it holds a {meta.get('kind')} with config {meta.get('config')}, "
            f"but the model is a {type(model).__name__} with config {getattr(model, 'config', {})}"
        )
    if training["optimizer"]["kind"] != type(optimizer).__name__:
        raise CheckpointError(f"cannot resume from {path}: it used {training['optimizer']['kind']}, "
                              f"this run uses {type(optimizer).__name__}")
    changed = setting_differences(training["settings"], settings) \
        + setting_differences(training["optimizer"].get("settings", {}), optimizer.settings(), "optimizer ")
    if changed:
        raise CheckpointError(f"cannot resume from {path}: it was trained with {'; '.join(changed)}: resume with "
                              "the same settings, or start a new run")
    restore_arrays(model, arrays, path)      # parameters and state (e.g. an RBM's persistent chains), checked
    try:
        optimizer.load_state_dict({"meta": training["optimizer"], "arrays": split_prefix(arrays, "optimizer")},
                                  params=model.params)
    except ValueError as err:
        raise CheckpointError(f"cannot resume from {path}: {err}; the file is corrupt (start a new run, or resume "
                              "from an intact copy)") from err
    return training["epochs_done"], _history_from(training["history"])
