"""The ``refvae`` command line: the framework every model plugs into, and the commands that work for any model.

    refvae train vae --dataset mnist-10k --epochs 10 --backend numpy --out runs/vae
    refvae evaluate runs/vae/checkpoint.npz --dataset mnist-10k
    refvae sample runs/vae/checkpoint.npz --n 100 --out samples.png
    refvae diagnose runs/vae/checkpoint.npz --dataset mnist-10k
    refvae gradcheck --backend strict

This module knows no model. A model package adds its commands when it is imported:
:func:`register_train_command` (``refvae train <model>``), :func:`register_evaluator` (``refvae evaluate`` for
its checkpoints) and :func:`register_command` (a command of its own, such as the VAE's ``diagnose``);
``refvae gradcheck`` runs the checks registered with :func:`refvae.gradcheck.register_check`. The program
``refvae`` is :func:`refvae.app.main`, which imports the model packages and then calls :func:`main`.

Every command takes ``--backend {numpy,cupy,strict}``. Errors are printed as one line that says
what was wrong and how to fix it, with exit status 2. Options are checked before any work starts (sizes must be
positive, output paths writable). A training run owns its ``--out`` directory (:func:`run_directory`): it is
locked for the run's duration, a run already there is replaced only with ``--force`` (or continued with
``--resume``), and temporary files left by an interrupted write are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import re
import secrets
import socket
import sys
from pathlib import Path

import numpy as np

from . import datasets
from .backend import BACKENDS, BackendError, get_backend, set_backend
from .checkpoint import CheckpointError, kind_of, load_model
from .validation import DataError
from .gradcheck import run_all
from .plots import plot_image_grid
from .train import TrainingError

__all__ = ["FORCE_HELP", "LOCK_NAME", "MAX_GRID", "RUN_FILES", "USER_ERRORS", "HelpFormatter", "Parser",
           "add_backend_argument", "build_parser", "check_output_file", "image_shape", "int_at_least", "load_from_args",
           "load_labeled", "main", "make_directory", "markdown_cell", "note", "parse_hidden", "positive_int",
           "positive_size", "register_command", "register_evaluator", "register_sampler", "register_train_command",
           "run_directory", "warn", "write_json"]

# OSError covers the environment's failures (a path that cannot be written, no network: datasets.DownloadError).
USER_ERRORS = (BackendError, CheckpointError, DataError, TrainingError, ValueError, FileNotFoundError,
               datasets.DatasetError, OSError)

#: The files that make a directory a run's: a new run there needs --resume (continue) or --force (replace).
RUN_FILES = ("checkpoint.npz", "metrics.json", "report.md")
#: The lock file of a run directory: it holds the pid (and host) of the run that owns the directory.
LOCK_NAME = "refvae.lock"
#: The most images ``refvae sample`` puts on one PNG grid (a .npy file holds any number).
MAX_GRID = 400
#: The help of every train command's ``--force``.
FORCE_HELP = "replace the run already in OUT (its checkpoint, metrics, report and plots) instead of refusing"

_TRAIN_COMMANDS: list = []     # add_parser(train_subparsers): each adds "refvae train <model>"
_COMMANDS: list = []           # add_parser(subparsers): each adds a command of its own
_EVALUATORS: dict = {}         # model kind (class name) -> fn(model, args) -> exit status
_SAMPLERS: dict = {}           # model kind (class name) -> fn(model, n, args) -> (n, d) array


def register_train_command(add_parser) -> None:
    """``add_parser(train_subparsers)`` adds ``refvae train <model>`` (with ``set_defaults(run=fn)``)."""
    if add_parser not in _TRAIN_COMMANDS:
        _TRAIN_COMMANDS.append(add_parser)


def register_command(add_parser) -> None:
    """``add_parser(subparsers)`` adds a top-level command (with ``set_defaults(run=fn)``)."""
    if add_parser not in _COMMANDS:
        _COMMANDS.append(add_parser)


def register_evaluator(kind: str, fn) -> None:
    """``refvae evaluate`` on a checkpoint of model ``kind`` calls ``fn(model, args)`` and returns its status."""
    _EVALUATORS[kind] = fn


def register_sampler(kind: str, fn) -> None:
    """``refvae sample`` on a checkpoint of model ``kind`` calls ``fn(model, n, args)`` for ``n`` samples, an array
    (n, d) on the backend or the host, honouring ``args.seed`` and ``args.binary`` (and ``args.gibbs_steps`` where
    the model samples by Gibbs chains)."""
    _SAMPLERS[kind] = fn


# ------------------------------------------------------------------------------------------------
# helpers for the models' commands
# ------------------------------------------------------------------------------------------------
def add_backend_argument(p):
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="array backend (default: $REFVAE_BACKEND or numpy); cupy runs on the GPU")


def image_shape(x_dim: int):
    """(side, side) for square images, else (1, x_dim)."""
    side = int(round(x_dim ** 0.5))
    return (side, side) if side * side == x_dim else (1, x_dim)


def load_labeled(name, **kwargs):
    """(train, train_labels, test, test_labels) of a named data set (host arrays)."""
    (train, y_train), (test, y_test) = datasets.load(name, labels=True, **kwargs)
    return train, y_train, test, y_test


def load_from_args(args):
    """(train, train_labels, test, test_labels) of ``args.dataset`` (from ``args.data_dir`` if given), cut to the
    first ``args.train_size`` / ``args.test_size`` examples where those options exist and are set."""
    train, y_train, test, y_test = load_labeled(args.dataset,
                                                **({"data_dir": args.data_dir} if args.data_dir else {}))
    n_train, n_test = getattr(args, "train_size", None), getattr(args, "test_size", None)
    if n_train is not None:
        train, y_train = train[:n_train], y_train[:n_train]
    if n_test is not None:
        test, y_test = test[:n_test], y_test[:n_test]
    return train, y_train, test, y_test


def parse_hidden(text: str):
    """``--hidden`` widths: "400" -> (400,), "500,200" -> (500, 200), "" -> ()."""
    text = text.strip()
    if not text:
        return ()
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated widths such as 400 or 500,200; got {text!r}") from None


def int_at_least(minimum: int, hint: str = ""):
    """An argparse ``type``: an integer of at least ``minimum`` (e.g. 1 for a size, 2 for AIS temperatures), else a
    one-line error naming the option; ``hint`` is added to it (what to do instead)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}, got {text!r}{hint}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


#: An argparse ``type``: a positive integer (counts, epochs).
positive_int = int_at_least(1)
#: An argparse ``type``: a positive number of examples (``--train-size``, ``--test-size``).
positive_size = int_at_least(1, " (leave the option out to use every example)")


def markdown_cell(text) -> str:
    """``text`` for a Markdown table cell: ``|`` escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def note(message: str) -> None:
    """Print ``refvae: note: message`` on stderr (something done that the user should know of)."""
    print(f"refvae: note: {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """Print ``refvae: warning: message`` on stderr (a result to be read with care)."""
    print(f"refvae: warning: {message}", file=sys.stderr, flush=True)


def _reason(err: OSError) -> str:
    return f"{err.strerror} ({err.filename})" if err.strerror and err.filename else (err.strerror or str(err))


def _blocker(path: Path):
    """The first of ``path`` and its parents that exists but is not a directory, or None."""
    return next((q for q in (path, *path.parents) if q.exists() and not q.is_dir()), None)


def make_directory(path, option: str) -> bool:
    """Create the directory ``path`` (named by ``option`` in errors) with its parents; True if it was created.

    Raises a one-line ValueError if ``path`` or one of its parents is a file, or the directory cannot be created.
    """
    path = Path(path)
    blocker = _blocker(path)
    if blocker == path:
        raise ValueError(f"{option} {path} is a file, not a directory: pass a directory (it is created if missing)")
    if blocker is not None:
        raise ValueError(f"cannot create {option} {path}: {blocker} is a file, not a directory; pass a path whose "
                         "parents are directories")
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create {option} {path}: {_reason(err)}; pass a directory that can be "
                         "created") from None
    return not existed


def check_output_file(path, option: str, suffixes: dict | None = None) -> Path:
    """Check, before any work, that the file ``path`` (named by ``option``) can be written: not a directory, its
    directory created if missing, writable, and (with ``suffixes``, suffix -> what it holds) of a known kind."""
    path = Path(path)
    if path.is_dir():
        kinds = " or ".join(suffixes) if suffixes else "a file name"
        raise ValueError(f"{option} {path} is a directory: pass a file name ending in {kinds}")
    if suffixes and path.suffix.lower() not in suffixes:
        kinds = " or ".join(f"{suffix} ({what})" for suffix, what in suffixes.items())
        raise ValueError(f"{option} must end in {kinds}, got {str(path)!r}")
    blocker = _blocker(path.parent)
    if blocker is not None:
        raise ValueError(f"cannot write {option} {path}: {blocker} is a file, not a directory; pass a path whose "
                         "parents are directories")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write {option} {path}: {_reason(err)}; pass a writable path") from None
    if not existed:
        path.unlink()
    return path


# ------------------------------------------------------------------------------------------------
# run directories: one writer at a time, no silent replacement, no stale temporaries
# ------------------------------------------------------------------------------------------------
def _pid_runs(pid: int) -> bool:
    if os.name != "posix":          # os.kill(pid, 0) is not a probe on Windows: assume the owner still runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                 # e.g. PermissionError: it runs, as another user
        return True
    return True


def _owner(text: str):
    """(pid, host) from a lock file's text, or (None, None)."""
    parts = text.split()
    try:
        return int(parts[0]), (parts[1] if len(parts) > 1 else None)
    except (IndexError, ValueError):
        return None, None


def _flock(fd) -> bool | None:
    """Take the advisory lock of ``fd`` without waiting: True if taken, False if another process holds it, None
    where the system has no such locks (then the pid in the file decides)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:                 # e.g. a file system without flock
        return None
    return True


class _RunLock:
    """``<dir>/refvae.lock``, holding ``"<pid> <host>"`` of the run that owns the directory.

    Where the system has advisory locks (flock) the lock is the kernel's: it ends with the process, however the
    process ends, so a lock file left by a killed run is recognised as stale and taken over. Elsewhere the pid in
    the file decides (a pid that no longer runs leaves a stale lock)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / LOCK_NAME
        self.fd = None

    def _refuse(self, text: str, hint: str = ""):
        pid, host = _owner(text)
        who = f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "") if pid else "unknown"
        raise ValueError(f"--out {self.directory} is in use by another refvae run ({who}; lock file {self.path}): "
                         f"wait for it to finish, or pass another --out{hint}")

    def acquire(self) -> None:
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise ValueError(f"cannot write into --out {self.directory}: {_reason(err)}; pass a writable "
                                 "directory") from None
            try:
                locked = _flock(fd)
                previous = os.read(fd, 256).decode("utf-8", "replace")
                if locked is False:
                    self._refuse(previous)
                pid, host = _owner(previous)
                if locked is None and pid is not None and pid != os.getpid() and (
                        _pid_runs(pid) or (host and host != socket.gethostname())):
                    self._refuse(previous, f" (if no run is using it, delete {self.path})")
                try:               # a run that just finished may have removed the file we opened: start again
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                if pid is not None and pid != os.getpid():
                    note(f"took over the stale lock {self.path} left by pid {pid}, which no longer holds it (a "
                         "run that was killed)")
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                self.fd = fd
                return
            except BaseException:
                os.close(fd)
                raise
        raise ValueError(f"could not lock --out {self.directory}: other runs keep starting and stopping there; "
                         "pass another --out")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)       # ends the advisory lock
        self.fd = None


def _remove_stale_temporaries(directory: Path, names) -> None:
    """Remove ``<name>.*.tmp`` (an atomic write's temporary file, left by a run killed mid-write) for each name."""
    stale = sorted({p for name in names for p in directory.glob(f"{glob.escape(name)}.*.tmp") if p.is_file()})
    for path in stale:
        path.unlink()
    if stale:
        note(f"removed {len(stale)} temporary file{'s' if len(stale) > 1 else ''} left in {directory} by an "
             f"interrupted write ({', '.join(p.name for p in stale)})")


@contextlib.contextmanager
def run_directory(out, *, resume: bool = False, force: bool = False, outputs=()):
    """The directory of a training run (``--out``), owned by this run until the block ends.

    Creates it (parents too), locks it (a second run into it is refused while this one lasts; a lock left by a
    killed run is taken over with a note), removes temporary files left there by an interrupted write, and
    refuses to start over a run already there (``RUN_FILES``) unless ``resume`` (continue it: training reads the
    checkpoint) or ``force`` (replace it: its ``RUN_FILES`` and ``outputs``, the command's plots, are removed
    first). A directory it created and left empty (the run failed before writing) is removed at the end.

    Raises
    ------
    ValueError
        One line saying what was wrong and what to do: ``--out`` is a file or cannot be created, another run holds
        it, a run is there without ``--resume`` or ``--force``, or both were given.
    """
    if resume and force:
        raise ValueError("pass --resume to continue the run in --out, or --force to replace it, not both")
    out = Path(out)
    created = make_directory(out, "--out")
    lock = _RunLock(out)
    try:
        lock.acquire()
        try:
            names = (*RUN_FILES, *outputs)
            _remove_stale_temporaries(out, names)
            present = [name for name in RUN_FILES if (out / name).exists()]
            if present and not resume:
                if not force:
                    raise ValueError(f"--out {out} already holds a run ({', '.join(present)}): pass --resume to "
                                     "continue it, --force to replace it, or another --out")
                removed = [name for name in names if (out / name).is_file()]
                for name in removed:
                    (out / name).unlink()
                note(f"--force: replacing the run in {out} (removed {', '.join(removed)})")
            yield out
        finally:
            lock.release()
    finally:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()         # only if empty


# ------------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------------
def _json_default(o):
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _finite(obj, where: str, found: dict):
    """``obj`` with every float that is not finite replaced by None (recorded in ``found``: place -> value)."""
    if isinstance(obj, (float, np.floating)):
        if math.isfinite(obj):
            return obj
        found[where] = "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist(), where, found)
    return obj


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented, standard JSON (NumPy scalars become numbers), atomically (a temporary file
    ``<name>.*.tmp`` renamed over ``path``).

    Standard JSON has no Infinity or NaN: such values are written as null, and a dict gets the entry
    ``"non_finite"``: {place: "Infinity" / "-Infinity" / "NaN"} saying which they were.
    """
    path = Path(path)
    found: dict = {}
    obj = _finite(obj, "", found)
    if found and isinstance(obj, dict):
        obj = {**obj, "non_finite": found}
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n"
    tmp = path.parent / f"{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "x") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------------
# the commands every model shares: evaluate, sample, gradcheck
# ------------------------------------------------------------------------------------------------
def _evaluate(args) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    model = load_model(args.checkpoint)
    evaluator = _EVALUATORS.get(kind_of(model))
    if evaluator is None:
        known = ", ".join(sorted(_EVALUATORS)) or "none"
        raise ValueError(f"refvae evaluate does not handle {type(model).__name__} checkpoints (it handles: {known})")
    return evaluator(model, args)


def _sample(args) -> int:
    B = get_backend()
    out = check_output_file(args.out, "--out", {".png": "an image grid", ".npy": "the raw array"})
    model = load_model(args.checkpoint)
    sampler = _SAMPLERS.get(kind_of(model))
    if sampler is None:
        known = ", ".join(sorted(_SAMPLERS)) or "none"
        raise ValueError(f"refvae sample does not handle {type(model).__name__} checkpoints (it handles: {known})")
    grid = out.suffix.lower() == ".png"
    n = min(args.n, MAX_GRID) if grid else args.n
    x = np.asarray(B.to_numpy(sampler(model, n, args)))
    if grid:
        ncols = math.ceil(math.sqrt(n))
        plot_image_grid(x, out, image_shape=image_shape(x.shape[1]), ncols=ncols,
                        title=f"{n} samples of {type(model).__name__}")
        shown = f" (a {ncols} x {math.ceil(n / ncols)} grid"
        shown += (f"; a PNG grid shows at most {MAX_GRID} of the --n {args.n} asked for: pass --out NAME.npy to "
                  f"keep all {args.n})" if n < args.n else ")")
    else:
        np.save(out, x)
        shown = f" (array of shape {x.shape})"
    print(f"wrote {n} samples to {out}{shown}")
    return 0


def _gradcheck(args) -> int:
    B = get_backend()
    ok = True
    for name, result in run_all(seed=args.seed):
        print(f"== {name} [{B.name}]")
        print(result)
        ok &= result.ok
    print("all gradient checks passed" if ok else "SOME GRADIENT CHECKS FAILED")
    return 0 if ok else 1


# ------------------------------------------------------------------------------------------------
# parser
# ------------------------------------------------------------------------------------------------
class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default (unless None, a flag's False, or the
    help states it already)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "(default" in text or "%(default)" in text or default is None
                or default is False or default is argparse.SUPPRESS):
            return text
        if isinstance(default, (tuple, list)):
            default = ",".join(map(str, default)) or '""'
        return f"{text} (default: {str(default).replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows every option's default (its subcommands' parsers too)."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def _models_description(train_sub) -> str:
    rows = [(a.dest, a.help or "") for a in train_sub._choices_actions]
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in rows)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
    parser = Parser(prog="refvae")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model, evaluate it, write checkpoint, metrics and plots")
    train_sub = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for add_parser in _TRAIN_COMMANDS:
        add_parser(train_sub)
    models = _models_description(train_sub)
    parser.description = ("Latent-variable models on NumPy or CuPy: train them, evaluate and sample their "
                          f"checkpoints.\n\nmodels (refvae train MODEL --help for each one's options):\n{models}\n\n"
                          "Errors are one line and exit with status 2.")
    train.description = "Train a model; each writes OUT/checkpoint.npz, OUT/metrics.json and plots."

    ev = sub.add_parser("evaluate", help="test ELBO and importance-weighted log-likelihood of a checkpoint")
    ev.add_argument("checkpoint", help="a checkpoint written by refvae train (OUT/checkpoint.npz)")
    add_backend_argument(ev)
    ev.add_argument("--dataset", default="mnist-10k", help="the test data: " + ", ".join(datasets.DATASETS))
    ev.add_argument("--data-dir", default=None, help="directory holding the MNIST IDX files (--dataset mnist); "
                    "without it they are downloaded into $REFVAE_DATA or ~/.cache/refvae/mnist")
    ev.add_argument("--test-size", type=positive_size, default=None, help="use only the first N test images (default: all)")
    ev.add_argument("--iw-samples", type=positive_int, default=1000,
                    help="importance samples per test image (VAE, Helmholtz machine)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the estimators' random numbers")
    ev.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    ev.add_argument("--ais-chains", type=positive_int, default=100, help="AIS chains for a large RBM's log Z")
    ev.add_argument("--ais-betas", type=int_at_least(2, " (beta = 0 and beta = 1)"), default=14500,
                    help="AIS temperatures for a large RBM's log Z")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    ev.set_defaults(run=_evaluate)

    sa = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid (or .npy)")
    sa.add_argument("checkpoint", help="a checkpoint written by refvae train (OUT/checkpoint.npz)")
    add_backend_argument(sa)
    sa.add_argument("--n", type=positive_int, default=100,
                    help=f"number of samples (a PNG grid shows at most {MAX_GRID}; a .npy file holds them all)")
    sa.add_argument("--out", default="samples.png", help="a .png image grid, or .npy for the raw array")
    sa.add_argument("--binary", action="store_true",
                    help="binary samples x ~ p(x|.) instead of the probabilities (the VAE's decoder mean, the RBM's "
                         "P(v|h), the Helmholtz machine's P(x|h_1))")
    sa.add_argument("--gibbs-steps", type=positive_int, default=1000,
                    help="Gibbs sweeps per sample, for models sampled by Gibbs chains (RBM)")
    sa.add_argument("--seed", type=int, default=0, help="seed of the samples")
    sa.set_defaults(run=_sample)

    for add_parser in _COMMANDS:
        add_parser(sub)

    gc = sub.add_parser("gradcheck", help="float64 finite-difference checks of every model's gradients")
    add_backend_argument(gc)
    gc.add_argument("--seed", type=int, default=0, help="seed of the checks' random inputs")
    gc.set_defaults(run=_gradcheck)
    return parser


#: Library wording -> command-line wording, for errors raised by the library (e.g. the datasets').
_COMMAND_LINE_TERMS = (
    (r"leave data_dir=None", "leave out --data-dir"),
    (r"pass data_dir= pointing at", "pass --data-dir pointing at"),
    (r"data_dir=(?=['\"])", "--data-dir "),
    (r"use load\('mnist', data_dir=\.\.\.\)", "use --dataset mnist --data-dir DIR"),
    (r"use load\('mnist-10k'\)", "use --dataset mnist-10k"),
    (r"pass cache_dir= a writable directory or set REFVAE_DATA", "set REFVAE_DATA to a writable directory"),
    (r"data_dir=", "--data-dir "),
)


def _one_line(err: BaseException) -> str:
    """The error's message on one line, in the command line's terms (``--data-dir``, not ``data_dir=``)."""
    parts = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    text = parts[0]
    for part in parts[1:]:
        text += (" " if text.endswith((".", ":", ";", ",")) else ". " if part[0].isupper() else "; ") + part
    for pattern, replacement in _COMMAND_LINE_TERMS:
        text = re.sub(pattern, replacement, text)
    return text


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.backend:
            set_backend(args.backend)
        return args.run(args)
    except USER_ERRORS as err:
        print(f"refvae: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refvae: interrupted; the last completed epoch is in the checkpoint (resume with --resume)",
              file=sys.stderr)
        return 130
