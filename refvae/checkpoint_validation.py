"""The one validator of checkpoints: every field and value of a file is checked before it is used.

A checkpoint is untrusted input (a file can be truncated, edited, foreign or hostile), so reading one goes through
three checks, each before anything is allocated for the next step, and each refusal is one :class:`CheckpointError`
naming the file and the field:

1. :func:`check_archive` -- the zip file itself, read from its directory and the ``.npy`` headers of its members
   (shape and dtype), never from its data: only ``.npy`` members of numeric dtypes (no objects, so no pickle);
   each member's declared size equal to what its header implies; the total within ``MAX_CHECKPOINT_BYTES`` and
   within ``MAX_EXPANSION`` times the file's size on disk (a zip bomb expands a thousandfold); ``__meta__`` a
   text of at most ``MAX_META_BYTES``.
2. :func:`check_document` -- the JSON document ``__meta__``: an object with ``format``, ``version``, ``kind``,
   ``config`` (an object) and, in a training checkpoint, ``training`` (epoch counter, settings, the history's
   per-epoch lists, the optimiser's kind, step counter and rate), each of its type and range.
3. :func:`check_config` and :func:`check_config_read_back` -- the model's configuration: the constructor's keyword
   names, and (when the class offers ``parameter_sizes(config)``) the parameter arrays the configuration
   describes against those the file holds, before the constructor allocates them; after construction, every
   value read back as given (a ``"seed": 1.5`` or ``"persistent": "no"`` is refused, not rounded or read as
   True). The constructor's own checks do the rest; :func:`check_parameter_values` refuses NaN, infinities and
   values beyond the model's dtype. The optimiser checks its state itself (``refvae.optim``), each model its
   ``set_state`` arrays.
"""

from __future__ import annotations

import inspect
import json
import math
import zipfile

import numpy as np

__all__ = ["CONFIG_ALLOWANCE", "MAX_CHECKPOINT_BYTES", "MAX_EXPANSION", "MAX_MEMBERS", "MAX_META_BYTES", "CheckpointError",
           "check_archive", "check_config", "check_config_read_back", "check_document", "check_parameter_values",
           "constructor_refusal", "not_a_checkpoint", "parse_document"]

FORMAT = "refvae-checkpoint"
VERSION = 1
META_KEY = "__meta__"

#: The most array data a checkpoint may declare in all (4 GiB: a model a thousand times MNIST's VAE, with its
#: optimiser state, fits).
MAX_CHECKPOINT_BYTES = 4 * 2**30
#: The JSON document's largest size (64 MiB, as NumPy stores it: 4 bytes a character; a 10,000-epoch history takes
#: about 2 MiB).
MAX_META_BYTES = 64 * 2**20
#: refvae writes checkpoints uncompressed; a compressed one may declare at most this many times its size on disk
#: (or ``EXPANSION_ALLOWANCE``, whichever is more). Weights compress by a few per cent, a zip bomb a
#: thousandfold.
MAX_EXPANSION = 100
EXPANSION_ALLOWANCE = 16 * 2**20
#: How many more parameter arrays and values than a file holds its config may describe before it is refused unbuilt
#: (a model that small is built, and ``set_params`` names what is missing; a ``"x_dim": 10**9`` is not).
CONFIG_ALLOWANCE = (1024, 2**20)
#: The most members (arrays) a checkpoint may hold.
MAX_MEMBERS = 100_000
_NUMERIC_KINDS = "biuf"                # bool, signed and unsigned integers, floating point
_FIX = " or was edited; use an intact copy (the checkpoint the training run wrote) or retrain"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, foreign, or does not fit the model."""


def _show(value, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (a hostile value may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------------------------------------
# 1. the archive: from its directory and the .npy headers, before reading any data
# ------------------------------------------------------------------------------------------------
def not_a_checkpoint(path) -> CheckpointError:
    """The refusal of a file that is not a zip archive, saying what it looks like (a .npy array, a pickle, text)."""
    with open(path, "rb") as f:
        head = f.read(64)
    fix = "pass the checkpoint.npz a training run wrote in its --out directory, or a file written by model.save"
    if head.startswith(b"PK"):
        return CheckpointError(f"cannot read checkpoint {path}: the file is truncated, corrupt or not a refvae "
                               f"checkpoint (a damaged zip archive); {fix}")
    if head.startswith(b"\x93NUMPY"):
        looks = "a single .npy array"
    elif head[:1] == b"\x80":
        looks = "a Python pickle, which refvae never loads"
    elif not head:
        looks = "empty"
    elif head.lstrip()[:1] in (b"{", b"["):
        looks = "a JSON file (such as metrics.json)"
    elif all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        looks = "a text file"
    else:
        looks = "of another format"
    return CheckpointError(f"{path} is not a refvae checkpoint: it is {looks}, not an .npz archive; {fix}")


def check_archive(path, file_size: int) -> dict:
    """Check the zip archive at ``path`` (``file_size`` bytes on disk) from its directory and the ``.npy`` header
    of every member, reading no array data; returns {member name without ``.npy``: (shape, dtype)}.

    Refuses a member that is not ``.npy``, a duplicate, an object or other non-numeric dtype, a header whose
    shape and dtype imply another size than the member declares, a declared total beyond
    ``MAX_CHECKPOINT_BYTES`` or ``MAX_EXPANSION`` times the file's size, and a ``__meta__`` that is not one
    text of at most ``MAX_META_BYTES``."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise CheckpointError(f"{path} holds {len(infos)} arrays, more than a checkpoint may ({MAX_MEMBERS}): "
                                  "it is not a refvae checkpoint")
        total = sum(info.file_size for info in infos)
        allowed = min(MAX_CHECKPOINT_BYTES, max(MAX_EXPANSION * file_size, EXPANSION_ALLOWANCE))
        if total > allowed:
            raise CheckpointError(
                f"{path} declares {total / 2**20:.1f} MiB of arrays in a file of {file_size / 2**20:.2f} MiB: more "
                f"than a checkpoint may (at most {MAX_CHECKPOINT_BYTES / 2**30:.0f} GiB in all, and {MAX_EXPANSION} "
                "times its size on disk: refvae writes them uncompressed), so it is refused unread (a zip bomb "
                "or a corrupt file); use the checkpoint the training run wrote")
        declared = {}
        for info in infos:
            name = _member_name(info, path, declared)
            declared[name] = _member_header(archive, info, name, path)
    return declared


def _member_name(info, path, seen) -> str:
    """The array name of a member (``model/W.npy`` -> ``model/W``), refusing other files and duplicates."""
    if not info.filename.endswith(".npy"):
        raise CheckpointError(f"{path} holds a member {_show(info.filename)} that is not a .npy array: it is not a "
                              "refvae checkpoint")
    name = info.filename[:-len(".npy")]
    if name in seen:
        raise CheckpointError(f"{path} holds the array {_show(name)} twice: the file is corrupt" + _FIX)
    return name


def _member_header(archive, info, name, path):
    """(shape, dtype) from a member's ``.npy`` header, checked against the member's declared size."""
    fmt = np.lib.format
    with archive.open(info) as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, EOFError, SyntaxError, TypeError) as err:
            raise CheckpointError(f"{path}: the array {_show(name)} has no valid .npy header ({err}): the file is "
                                  "corrupt or not a refvae checkpoint") from err
        header_bytes = f.tell()
    is_meta = name == META_KEY
    if dtype.hasobject or dtype.kind not in ("U" if is_meta else _NUMERIC_KINDS) or dtype.fields is not None:
        wanted = "one text" if is_meta else "numbers (bool, integer or floating point)"
        raise CheckpointError(f"{path}: the array {_show(name)} has dtype {dtype}, a checkpoint holds {wanted} "
                              "there: it is not a refvae checkpoint (refvae never loads objects or pickles)")
    data_bytes = math.prod(shape) * dtype.itemsize
    if header_bytes + data_bytes != info.file_size:
        raise CheckpointError(f"{path}: the array {_show(name)} declares shape {_show(shape)} of {dtype} "
                              f"({data_bytes} bytes) but its member holds {info.file_size - header_bytes}: the file "
                              "is corrupt" + _FIX)
    if is_meta and (shape != () or data_bytes > MAX_META_BYTES):
        raise CheckpointError(f"{path}: its {META_KEY!r} entry is {data_bytes} bytes of shape {shape}, not one text "
                              f"of at most {MAX_META_BYTES // 2**20} MiB: the file is corrupt" + _FIX)
    return shape, dtype


# ------------------------------------------------------------------------------------------------
# 2. the document (__meta__): every field of its type and range
# ------------------------------------------------------------------------------------------------
def parse_document(text: str, path) -> dict:
    """``__meta__``'s JSON text as a checked document (:func:`check_document`)."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"{path}: its {META_KEY!r} entry is not valid JSON ({_show(str(err), 80)}): the file "
                              "is corrupt or not a refvae checkpoint") from err
    check_document(meta, path)
    return meta


def check_document(meta, path) -> None:
    """Check the document of a checkpoint: ``format``, ``version``, ``kind``, ``config`` and, when present,
    ``training`` (:func:`_check_training`). Other fields (notes such as a classifier's test accuracy) are free."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its {META_KEY!r} entry is a JSON {_json_type(meta)}, not an object: it is not "
                              "a refvae checkpoint")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a refvae checkpoint (format {_show(meta.get('format'))}, "
                              f"expected {FORMAT!r})")
    version = _field(meta, "version", int, path)
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer refvae (checkpoint version {version} > {VERSION}): "
                              "upgrade refvae")
    if version < 1:
        raise CheckpointError(f"{path}: field version must be a positive integer, got {version}")
    if not _field(meta, "kind", str, path):
        raise CheckpointError(f"{path}: field kind is empty: it must name the model's class")
    _field(meta, "config", dict, path)
    if "training" in meta:
        _check_training(_field(meta, "training", dict, path), path)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "an object", list: "a list"}


def _json_type(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _field(document: dict, key: str, kind, path, where: str = ""):
    """``document[key]``, which must exist and be of JSON type ``kind`` (int: not a boolean; float: any number)."""
    name = f"{where}{key}"
    if key not in document:
        raise CheckpointError(f"{path}: field {name} is missing: the file is corrupt or not a refvae checkpoint")
    value = document[key]
    ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
    if not ok or isinstance(value, bool):
        raise CheckpointError(f"{path}: field {name} must be {_TYPE_NAMES[kind]}, got {_json_type(value)} "
                              f"{_show(value)}: the file is corrupt" + _FIX)
    return value


def _check_training(training: dict, path) -> None:
    """The training state that resuming reads: ``epochs_done`` >= 0, ``settings`` an object, ``history`` per-epoch
    lists of finite numbers, ``optimizer`` with its ``kind``, step counter ``t`` >= 0, rate ``lr`` >= 0 and
    ``settings``."""
    where = "training."
    epochs = _field(training, "epochs_done", int, path, where)
    if epochs < 0:
        raise CheckpointError(f"{path}: field training.epochs_done must be >= 0, got {epochs}")
    _field(training, "settings", dict, path, where)
    _check_history(_field(training, "history", dict, path, where), epochs, path)
    optimizer = _field(training, "optimizer", dict, path, where)
    _field(optimizer, "kind", str, path, "training.optimizer.")
    t = _field(optimizer, "t", int, path, "training.optimizer.")
    if t < 0:
        raise CheckpointError(f"{path}: field training.optimizer.t (steps taken) must be >= 0, got {t}")
    if "lr" in optimizer:
        lr = _field(optimizer, "lr", float, path, "training.optimizer.")
        if not (math.isfinite(lr) and lr >= 0):
            raise CheckpointError(f"{path}: field training.optimizer.lr must be a finite rate >= 0, got {lr}")
    if "settings" in optimizer:
        _field(optimizer, "settings", dict, path, "training.optimizer.")


def _check_history(history: dict, epochs: int, path) -> None:
    """One entry per epoch in ``epoch`` (1, 2, ..., epochs), ``train_loss``, ``val_loss`` (None without validation
    data) and ``seconds``; every other entry (terms, diagnostics, callbacks' numbers) a list of finite numbers
    or None."""
    for key in ("epoch", "train_loss", "val_loss", "seconds"):
        values = _field(history, key, list, path, "training.history.")
        if len(values) != epochs:
            raise CheckpointError(f"{path}: field training.history.{key} has {len(values)} entries for "
                                  f"{epochs} epochs done: the file is corrupt" + _FIX)
    if history["epoch"] != list(range(1, epochs + 1)):
        raise CheckpointError(f"{path}: field training.history.epoch must count the epochs 1 to {epochs}, got "
                              f"{_show(history['epoch'])}: the file is corrupt" + _FIX)
    for key, values in history.items():
        key = key if key.isidentifier() and len(key) <= 60 else _show(key)
        if not isinstance(values, list):
            raise CheckpointError(f"{path}: field training.history.{key} must be a list (one entry per "
                                  f"epoch), got {_json_type(values)}: the file is corrupt" + _FIX)
        bad = [v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                                       or not math.isfinite(v))]
        if bad:
            raise CheckpointError(f"{path}: field training.history.{key} holds {_show(bad[0])}, not a finite "
                                  "number: the run diverged or the file is corrupt; use an earlier checkpoint or "
                                  "retrain")


# ------------------------------------------------------------------------------------------------
# 3. the model's configuration and parameters
# ------------------------------------------------------------------------------------------------
def check_config(cls, config: dict, declared: dict, path) -> None:
    """Before ``cls(**config)``: the keyword names the constructor takes, and, when ``cls`` has
    ``parameter_sizes(config)`` (an iterable of each parameter array's number of values, computed from the
    sizes alone), the arrays it describes against the ``model/`` arrays of the file (``declared``: name ->
    (shape, dtype)): no more arrays, no more values, up to ``CONFIG_ALLOWANCE`` (the constructor would allocate
    them; a config describing a little more or fewer is built, and ``set_params`` names what is missing). A config
    of sizes far beyond the file's arrays (a ``"x_dim": 10**9``, a million layers) is refused here."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: field config must be an object, got {_json_type(config)} {_show(config)}: "
                              "the file is corrupt" + _FIX)
    try:
        inspect.signature(cls).bind(**config)
    except TypeError as err:
        known = ", ".join(p for p in inspect.signature(cls).parameters if p != "self")
        raise CheckpointError(f"{path}: its config does not fit a {cls.__name__} ({err}; the fields are: "
                              f"{known}): the file is corrupt" + _FIX) from err
    sizes = getattr(cls, "parameter_sizes", None)
    if sizes is None:
        return
    held = [math.prod(shape) for name, (shape, _) in declared.items() if name.startswith("model/")]
    max_arrays, max_values = len(held) + CONFIG_ALLOWANCE[0], sum(held) + CONFIG_ALLOWANCE[1]
    n_arrays, n_values = 0, 0
    try:
        for size in sizes(config):
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                return                           # a malformed size: the constructor names what is wrong
            n_arrays, n_values = n_arrays + 1, n_values + size
            if n_arrays > max_arrays or n_values > max_values:
                what = f"{n_values} values" if n_values > max_values else f"{n_arrays} arrays"
                held_what = f"{sum(held)} values" if n_values > max_values else f"{len(held)} arrays"
                raise CheckpointError(
                    f"{path}: its config ({_largest_fields(config)}) describes parameters of {what} or more, but "
                    f"the file holds {held_what}: the config and the arrays disagree (the file is corrupt or was "
                    "edited), and the model is not built; use an intact copy or retrain")
    except (KeyError, TypeError, ValueError, OverflowError, IndexError):
        return                                   # a malformed config: the constructor names what is wrong


def _largest_fields(config: dict, shown: int = 4) -> str:
    """The ``shown`` fields of ``config`` with the largest sizes (an integer, or a list's length and largest
    integer), as ``name=value``: where a config of huge sizes is wrong."""
    def size(value):
        if isinstance(value, list):
            return len(value) + max((abs(v) for v in value[:10_000] if isinstance(v, int)), default=0)
        return abs(value) if isinstance(value, int) and not isinstance(value, bool) else 0
    names = sorted(config, key=lambda k: -size(config[k]))[:shown]
    return ", ".join(f"{k}={_show(config[k], 40)}" for k in names) + (", ..." if len(config) > shown else "")


def constructor_refusal(cls, config: dict, err: Exception, path) -> CheckpointError:
    """The refusal of a config that ``cls``'s constructor refused with ``err``, naming the field to blame: the
    first whose default, put in its place, lets the constructor build (tried only after a refusal)."""
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items() if p.default is not p.empty}
    for key, value in config.items():
        if key not in defaults or _same_json(value, defaults[key]):
            continue
        try:
            cls(**{**config, key: defaults[key]})
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        return CheckpointError(f"checkpoint {path} does not describe a valid {cls.__name__}: config field {key} "
                               f"holds {_show(value)} ({_json_type(value)}), which its constructor refuses ({err})")
    return CheckpointError(f"checkpoint {path} does not describe a valid {cls.__name__}: its config is refused "
                           f"({err})")


def check_config_read_back(model, config: dict, path) -> None:
    """After construction: every field of ``config`` as the model reads it back (``model.config``, else the
    attribute of the same name), so that the constructor's conversions (int(1.5), bool("no")) change nothing."""
    reads = getattr(model, "config", {})
    for key, value in config.items():
        if key in reads:
            back = reads[key]
        elif hasattr(model, key):
            back = getattr(model, key)
        else:
            continue
        if not _same_json(value, back):
            raise CheckpointError(f"{path}: config field {key} holds {_show(value)} ({_json_type(value)}), which a "
                                  f"{type(model).__name__} reads as {_show(back)}: the file is corrupt" + _FIX)


def _same_json(a, b) -> bool:
    """Equal as JSON values, of the same JSON type (True is not 1; 1 and 1.0 are both numbers; a tuple is a list)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) \
            and all(_same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() \
            and all(_same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def check_parameter_values(params: dict, dtype: str, path) -> None:
    """Every parameter (host arrays) finite and within the range of the model's dtype (1e39 in a float64 file is
    inf in float32): refused before the cast."""
    bad = sorted(name for name, a in params.items() if not np.all(np.isfinite(a)))
    if bad:
        raise CheckpointError(f"{path} holds non-finite parameters ({', '.join(bad)}): the run diverged "
                              "before it was saved; use an earlier checkpoint or retrain with a smaller learning rate")
    limit = float(np.finfo(dtype).max)
    big = sorted(name for name, a in params.items() if np.issubdtype(a.dtype, np.floating) and a.size
                 and float(np.max(np.abs(a))) > limit)
    if big:
        raise CheckpointError(f"{path} holds parameters beyond the range of the model's dtype ({dtype}): "
                              f"{', '.join(big)} would become infinite; use an earlier checkpoint or retrain "
                              "with a smaller learning rate")
