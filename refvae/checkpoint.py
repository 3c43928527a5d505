"""Checkpoints: written atomically, read without pickle.

A checkpoint is one ``.npz`` file (a zip of ``.npy`` arrays) holding

* the model's arrays under ``"model/<name>"``, optional optimiser state under ``"optimizer/<name>"``;
* a JSON document under ``"__meta__"``: ``{"format": "refvae-checkpoint", "version": 1,
  "kind": <model class name>, "config": {...}, ...}``.

Writing goes to a temporary file in the same directory, is flushed to disk, then renamed over the
target (``os.replace`` is atomic), so a crash mid-write leaves the previous checkpoint intact.
Reading uses ``numpy.load(..., allow_pickle=False)``: a checkpoint cannot run code. Every field and value is
checked before use, the archive's declared sizes before any array is read (``refvae.checkpoint_validation``).

:func:`load_model` rebuilds any kind of model from its checkpoint, of the classes given to :func:`register_model`:
``refvae.app.install`` gives it every class of the program's table (``refvae.load`` and the command line's
``evaluate`` and ``sample`` use this).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .checkpoint_validation import (FORMAT, META_KEY, VERSION, CheckpointError, check_archive, check_config,
                                    check_config_read_back, check_parameter_values, constructor_refusal,
                                    not_a_checkpoint, parse_document)

__all__ = ["CheckpointError", "Checkpointable", "kind_of", "load_checkpoint", "load_model", "rebuild", "register_model",
           "restore_arrays", "save_checkpoint"]

_MODELS: dict = {}


def register_model(cls):
    """Make ``cls`` loadable by :func:`load_model` under its class name (``refvae.app.install`` calls it for every
    model of its table); returns ``cls``."""
    _MODELS[cls.__name__] = cls
    return cls


def kind_of(model) -> str:
    """The model kind of ``model``: its class or the nearest registered base class; when none is registered, the
    class that derives from :class:`Checkpointable` itself (a subclass of GaussianVAE is a GaussianVAE)."""
    mro = type(model).__mro__
    for cls in mro:
        if _MODELS.get(cls.__name__) is cls:
            return cls.__name__
    for cls in mro:
        if Checkpointable in cls.__bases__:
            return cls.__name__
    return type(model).__name__


def save_checkpoint(path, arrays: dict, meta: dict) -> Path:
    """Write ``arrays`` (name -> host NumPy array) and ``meta`` (JSON-serialisable) atomically to ``path``."""
    path = Path(path)
    document = {"format": FORMAT, "version": VERSION, **meta}
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    payload[META_KEY] = np.array(json.dumps(document))
    with atomic_file(path) as f:
        np.savez(f, **payload)
    return path


@contextlib.contextmanager
def atomic_file(path):
    """A binary file to write that appears at ``path`` only when complete: written as ``<name>.*.tmp`` beside it,
    flushed to disk, then renamed over ``path`` (``os.replace`` is atomic), with the user's usual permissions.
    If writing fails, the temporary is removed and ``path`` keeps its previous contents; an OSError (a full disk,
    no permission) names ``path`` as its ``filename``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as err:                              # named by the file it was for, not its temporary
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err
    try:
        os.chmod(tmp, 0o666 & ~_umask())                 # mkstemp makes 0600; give the user's usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename in (None, tmp):   # e.g. a write into a full disk
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path) -> tuple[dict, dict]:
    """Read a checkpoint: ``(arrays, meta)`` with host NumPy arrays, every field checked
    (``refvae.checkpoint_validation``: the archive from its headers before any data is read, then the document).
    Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: check the path (training writes <out>/checkpoint.npz)")
    if path.is_dir():
        candidate = path / "checkpoint.npz"
        if candidate.exists():
            path = candidate
        else:
            raise CheckpointError(f"{path} is a directory without checkpoint.npz: pass the checkpoint file itself")
    try:
        if not zipfile.is_zipfile(path):
            raise not_a_checkpoint(path)
        declared = check_archive(path, path.stat().st_size)
        if META_KEY not in declared:
            raise CheckpointError(
                f"{path} is an .npz file but not a refvae checkpoint (no {META_KEY!r} entry); "
                "pass a file written by refvae (model.save or refvae train)"
            )
        with np.load(path, allow_pickle=False) as z:
            text = str(z[META_KEY])
            arrays = {k: z[k] for k in z.files if k != META_KEY}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated, corrupt or not a refvae checkpoint ({err}). "
            "If a run was interrupted, its previous checkpoint was kept only if it was written by refvae; "
            "otherwise retrain."
        ) from err
    return arrays, parse_document(text, path)


def load_model(path):
    """Rebuild the model saved at ``path``, whatever its kind (VAE, RBM, Helmholtz machine)."""
    arrays, meta = load_checkpoint(path)
    kind = meta.get("kind")
    if kind not in _MODELS:
        known = ", ".join(sorted(_MODELS)) or "none registered"
        raise CheckpointError(f"checkpoint {path} holds a model of kind {kind!r}, which refvae cannot build ({known})")
    return _MODELS[kind].from_checkpoint(arrays, meta, path)


def rebuild(cls, arrays: dict, meta: dict, path="checkpoint"):
    """A model of class ``cls`` from a checkpoint's contents: constructed from ``meta["config"]``, parameters
    from the ``model/`` arrays, and (if the model has ``set_state``) state such as persistent chains from the
    ``state/`` arrays (:func:`restore_arrays`). The config is checked before the constructor runs and read back
    after it (``refvae.checkpoint_validation``); the constructor checks its values. Raises
    :class:`CheckpointError` for another kind or an inconsistent checkpoint."""
    if meta.get("kind") != cls.__name__:
        raise CheckpointError(f"{path} holds a {meta.get('kind')}, not a {cls.__name__}: load it with refvae.load(path)")
    config = meta.get("config")
    check_config(cls, config, {k: (a.shape, a.dtype) for k, a in arrays.items()}, path)
    try:
        model = cls(**config)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise constructor_refusal(cls, config, err, path) from err
    check_config_read_back(model, config, path)
    restore_arrays(model, arrays, path)
    return model


def restore_arrays(model, arrays: dict, path="checkpoint") -> None:
    """Set ``model``'s parameters from a checkpoint's ``model/`` arrays and its state (``set_state``) from the
    ``state/`` arrays, after checking them: no arrays but those (and ``optimizer/``), every parameter finite and
    within the model's dtype, none missing or unknown; ``set_params`` and ``set_state`` check shapes and values.
    Raises :class:`CheckpointError`."""
    unknown = sorted(k for k in arrays if k.split("/", 1)[0] not in ("model", "state", "optimizer"))
    if unknown:
        raise CheckpointError(f"{path} holds arrays a refvae checkpoint does not ({', '.join(unknown[:5])}): the "
                              "file is corrupt or was edited; use an intact copy or retrain")
    params, state = split_prefix(arrays, "model"), split_prefix(arrays, "state")
    check_parameter_values(params, getattr(model, "dtype_name", "float64"), path)
    try:
        _check_names(params, model.params)
        model.set_params(params)
        if hasattr(model, "set_state"):
            model.set_state(state)
        elif state:
            raise ValueError(f"a {type(model).__name__} keeps no state, but the file holds state/ arrays "
                             f"({', '.join(sorted(state))})")
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} does not describe a valid {type(model).__name__}: {err}") from err


def _check_names(given: dict, mine: dict) -> None:
    """The parameter arrays of a file, by name, against the model's: none missing, none unknown."""
    missing, extra = sorted(set(mine) - set(given)), sorted(set(given) - set(mine))
    if missing or extra:
        raise ValueError(f"its parameters do not match the model's: missing {missing}, unexpected {extra}")


class Checkpointable:
    """``save``, ``load`` and ``from_checkpoint`` for a model that has ``config`` (its constructor's keyword
    arguments), ``checkpoint_arrays()`` (host arrays named ``model/<param>``, and ``state/<name>`` for state such
    as persistent chains), ``set_params`` and, if it keeps state, ``set_state``."""

    def save(self, path, **extra_meta):
        """Write the model to ``path`` (.npz, atomic, no pickle); returns the path."""
        return save_checkpoint(path, self.checkpoint_arrays(), {"kind": kind_of(self), "config": self.config,
                                                                 **extra_meta})

    @classmethod
    def from_checkpoint(cls, arrays, meta, path="checkpoint"):
        """Build a model from the contents of a checkpoint (see :func:`load_checkpoint`)."""
        return rebuild(cls, arrays, meta, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` or by training (parameters go to the active backend)."""
        arrays, meta = load_checkpoint(path)
        return cls.from_checkpoint(arrays, meta, path)


def split_prefix(arrays: dict, prefix: str) -> dict:
    """The entries of ``arrays`` whose name starts with ``prefix + '/'``, with the prefix removed."""
    head = prefix + "/"
    return {k[len(head):]: v for k, v in arrays.items() if k.startswith(head)}
