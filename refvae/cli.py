"""The ``refvae`` command line: the framework every model plugs into, and the commands that work for any model.

    refvae train vae --dataset mnist-10k --epochs 10 --backend numpy --out runs/vae
    refvae evaluate runs/vae/checkpoint.npz --dataset mnist-10k
    refvae sample runs/vae/checkpoint.npz --n 100 --out samples.png
    refvae diagnose runs/vae/checkpoint.npz --dataset mnist-10k
    refvae gradcheck --backend strict

This module knows no model. The program ``refvae`` is :func:`refvae.app.main`, which installs every model of
``refvae.app``'s table into the registries below and then calls :func:`main`: :func:`register_train_command`
(``refvae train <model>``), :func:`register_evaluator` and :func:`register_sampler` (``refvae evaluate`` and
``refvae sample`` for its checkpoints), :func:`register_command` (a command of its own, such as the VAE's
``diagnose``) and :func:`register_command_line_terms`; ``refvae gradcheck`` runs the checks of
:func:`refvae.gradcheck.register_checks`.

Every command takes ``--backend {numpy,cupy,strict}``. Errors are printed as one line that says
what was wrong and how to fix it, with exit status 2 (the option parser's too: :class:`Parser`; a file that cannot
be written is named, with the option that chose it). Options are checked before any work starts (sizes must be
positive, numbers finite and in range, output paths writable), and so is the memory the sizes will need
(:func:`refvae.memory.check_memory`, called by each model's commands). NumPy's floating-point warnings are silenced
while a command runs: a diverging run says so in its one error line. A training run owns its ``--out`` directory (:func:`run_directory`): it is
locked for the run's duration, a run already there is replaced only with ``--force`` (or continued with
``--resume``), and temporary files left by an interrupted write are removed.

``--dataset`` is a named dataset or a data file of one's own (.npy, .npz, .csv: :func:`refvae.datasets.load_file`),
read by :func:`load_from_args`. A training run records every option in its checkpoint (:func:`run_options`, fit's
``options``): ``--resume`` takes those not given from it (:func:`resume_options`), and ``evaluate``, ``sample``
and ``diagnose`` read the dataset from it (:func:`data_options_from_checkpoint`).
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from . import datasets
from .backend import BACKENDS, BackendError, get_backend, set_backend
from .checkpoint import CheckpointError, atomic_file, kind_of, load_checkpoint, load_model
from .validation import DataError
from .gradcheck import run_all
from .memory import check_memory
from .plots import plot_image_grid
from .rundir import LOCK_NAME, RUN_FILES, check_output_file, make_directory, note, run_directory
from ._version import __version__
from .train import TrainingError, setting_differences

__all__ = ["AIS_DEFAULT_TEMPERATURES", "AIS_PAPER_TEMPERATURES", "DATASET_HELP", "FLOAT32_MAX", "FLOAT32_TINY",
           "FORCE_HELP", "LOCK_NAME", "MAX_GRID", "NOT_RESUMED", "RESUME_FREE", "RUN_FILES", "USER_ERRORS",
           "add_ais_arguments", "add_backend_argument", "add_run_arguments", "add_test_fraction_argument",
           "ais_temperatures", "build_parser", "check_memory", "check_output_file", "check_width",
           "data_options_from_checkpoint", "HelpFormatter", "image_shape", "int_at_least", "load_from_args",
           "load_labeled", "main", "make_directory", "markdown_cell", "momentum_float", "nonnegative_float", "note",
           "number_in", "parse_hidden", "Parser", "positive_float", "positive_int", "positive_size",
           "register_command", "register_command_line_terms", "register_evaluator", "register_sampler",
           "register_train_command", "resume_options", "run_directory", "run_options", "seed_int",
           "use_backend_or_exit", "warn", "write_json"]

# OSError covers the environment's failures (a path that cannot be written, no network: datasets.DownloadError).
USER_ERRORS = (BackendError, CheckpointError, DataError, TrainingError, ValueError, FileNotFoundError,
               datasets.DatasetError, OSError)

#: The most images ``refvae sample`` puts on one PNG grid (a .npy file holds any number).
MAX_GRID = 400
#: The help of every train command's ``--force``.
FORCE_HELP = "replace the run already in OUT (its checkpoint, metrics, report and plots) instead of refusing"

_TRAIN_COMMANDS: list = []     # add_parser(train_subparsers): each adds "refvae train <model>"
_COMMANDS: list = []           # add_parser(subparsers): each adds a command of its own
_EVALUATORS: dict = {}         # model kind (class name) -> fn(model, args) -> exit status
_SAMPLERS: dict = {}           # model kind (class name) -> fn(model, n, args) -> (n, d) array
_SAMPLE_SOURCES: dict = {}     # model kind -> the --source values its sampler handles


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


def register_sampler(kind: str, fn, sources=("prior",)) -> None:
    """``refvae sample`` on a checkpoint of model ``kind`` calls ``fn(model, n, args)`` for ``n`` samples, an array
    (n, d) on the backend or the host, honouring ``args.seed`` and ``args.binary`` (and ``args.gibbs_steps`` where
    the model samples by Gibbs chains). ``sources`` are the values of ``--source`` (where the latent draws come
    from) that ``fn`` handles as ``args.source``; the first is the default."""
    _SAMPLERS[kind] = fn
    _SAMPLE_SOURCES[kind] = tuple(sources)


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


def load_from_args(args, *, unit_interval: bool = False, range_fix: str = "rescale them into [0, 1] (e.g. pixels / 255)",
                   min_train: int = 1, width: int | None = None):
    """(train, train_labels, test, test_labels) of ``args.dataset``: a named dataset (from ``args.data_dir`` if
    given) or a data file (:func:`refvae.datasets.load_file`, its held-out share ``args.test_fraction``), cut to the
    first ``args.train_size`` / ``args.test_size`` examples where those options exist and are set (a size beyond
    the data's uses all of it, with a note). Labels are None for a file without them.

    A data file is checked for the model that will read it: values in [0, 1] with ``unit_interval`` (``range_fix``
    says how to fix others), at least ``min_train`` training rows; with ``width``, the data must have that many
    values per example (the model of a checkpoint)."""
    name, data_dir, fraction = args.dataset, getattr(args, "data_dir", None), getattr(args, "test_fraction", None)
    if name not in datasets.DATASETS and datasets.is_data_file(name):
        if data_dir:
            raise ValueError(f"--data-dir is for --dataset mnist; a data file (--dataset {name}) is read as it is: "
                             "leave out --data-dir")
        (train, y_train), (test, y_test) = datasets.load_file(
            name, labels=True, test_fraction=fraction, unit_interval=unit_interval, range_fix=range_fix,
            min_train=min_train)
    else:
        if fraction is not None:
            raise ValueError(f"--test-fraction holds out rows of a --dataset file, but {name} has a test set of its "
                             "own: leave out --test-fraction")
        train, y_train, test, y_test = load_labeled(name, **({"data_dir": data_dir} if data_dir else {}))
    if width is not None:
        check_width(name, train.shape[1], width)
    n_train, n_test = getattr(args, "train_size", None), getattr(args, "test_size", None)
    for option, n, have, what in (("--train-size", n_train, train.shape[0], "training"),
                                  ("--test-size", n_test, test.shape[0], "test")):
        if n is not None and n > have:
            note(f"{option} {n} is more than the {have} {what} examples of {args.dataset}: using all {have}")
    if n_train is not None:
        train, y_train = train[:n_train], None if y_train is None else y_train[:n_train]
    if n_test is not None:
        test, y_test = test[:n_test], None if y_test is None else y_test[:n_test]
    return train, y_train, test, y_test


def check_width(dataset: str, data_width: int, model_width: int) -> None:
    """Refuse, in one line naming ``--dataset``, data of another width than the checkpoint's model takes."""
    if data_width != model_width:
        raise ValueError(_width_message(dataset, data_width, model_width))


def _width_message(dataset, data_width, model_width) -> str:
    """The one wording of data of another width than the checkpoint's model takes (check_width, and the model's
    own refusal rewritten by the command-line terms)."""
    return (f"--dataset {dataset} has {data_width} values per example, but the checkpoint's model takes "
            f"{model_width}: pass the --dataset it was trained on (leave --dataset out to use it)")


def _open_fraction(text: str) -> float:
    """``--test-fraction``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), got {text!r}")
    return value


_open_fraction.__name__ = "fraction"


def add_test_fraction_argument(p) -> None:
    """``--test-fraction F``: the share of a --dataset file's rows held out for testing (files without a test part)."""
    p.add_argument("--test-fraction", type=_open_fraction, default=None, metavar="F",
                   help=f"with a --dataset file that has no test part: the share of its rows held out for testing "
                        f"(default: {datasets.TEST_FRACTION}; the same fixed rows for every run and seed)")


#: The help of every ``--dataset``: the named datasets, or a file of one's own.
DATASET_HELP = (f"{', '.join(datasets.DATASETS)}, or a data file of your own: .npy, .npz or .csv, one example per row "
                "(see README, 'Your own data')")

# ------------------------------------------------------------------------------------------------
# the options a run records in its checkpoint, and takes back from it
# ------------------------------------------------------------------------------------------------
#: Options a resumed run may change: how long it trains in all, how it is evaluated and shown, where its files are.
RESUME_FREE = ("epochs", "iw_samples", "ais_chains", "ais_betas", "data_dir", "out", "resume", "force", "backend",
               "no_progress")
#: Options ``--resume`` never takes from the checkpoint: which run, what to do with it, how this call runs.
NOT_RESUMED = ("out", "resume", "force", "backend", "no_progress")
_NOT_OPTIONS = ("run", "command", "model", "checkpoint", "explicit_options")


def _option_value(name: str, value):
    """An option as a JSON value: tuples as lists, a --dataset file or --data-dir as an absolute path."""
    if isinstance(value, tuple):
        return list(value)
    if name == "dataset" and value not in datasets.DATASETS and datasets.is_data_file(value) \
            or name == "data_dir" and value:
        return str(Path(value).expanduser().resolve())
    return value


def run_options(args) -> dict:
    """Every option of a train command's ``args`` as JSON values: what the run records in its checkpoint (fit's
    ``options``, ``meta["training"]["options"]``), keyed by destination (``batch_size`` for ``--batch-size``)."""
    return {k: _option_value(k, v) for k, v in vars(args).items() if k not in _NOT_OPTIONS}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resume_options(args) -> None:
    """With ``--resume`` and a checkpoint in ``args.out`` that records its options: every option not given on the
    command line takes the checkpoint's value (but NOT_RESUMED); one given that differs from the checkpoint's and
    is not RESUME_FREE refuses the resume, naming it. Which were given is ``args.explicit_options`` (set by
    :func:`main`; without it every option counts as given)."""
    path = Path(args.out) / "checkpoint.npz"
    if not getattr(args, "resume", False) or not path.is_file():
        return
    recorded = (load_checkpoint(path)[1].get("training") or {}).get("options")
    if not isinstance(recorded, dict):
        return                                                # an older checkpoint: the options as given
    given = getattr(args, "explicit_options", None)
    current = vars(args)
    for name, value in recorded.items():
        if name in current and name not in NOT_RESUMED and name not in _NOT_OPTIONS and given is not None \
                and name not in given:
            setattr(args, name, _recorded_value(path, name, value, current[name]))
    now = run_options(args)
    changed = setting_differences({_flag(k): v for k, v in recorded.items() if k in now and k not in RESUME_FREE},
                                  {_flag(k): v for k, v in now.items()})
    if changed:
        raise CheckpointError(f"cannot resume from {path}: it was trained with {'; '.join(changed)}: leave those "
                              "options out (--resume takes every option from the checkpoint), or start a new run")


def _recorded_value(path, name: str, value, default):
    """A recorded option as ``args`` holds it (a list as a tuple where the option is one, such as --hidden),
    refused in one line if it is not a value an option can have (a checkpoint edited or from elsewhere)."""
    scalar = (bool, int, float, str, type(None))
    fits = isinstance(value, scalar) or isinstance(value, list) and all(isinstance(v, scalar) for v in value)
    if isinstance(default, tuple):
        fits = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not fits:
        raise CheckpointError(f"{path} records {_flag(name)} as {value!r}, which is not a value of that option: "
                              "give the option explicitly, or start a new run")
    return tuple(value) if isinstance(value, list) else value


def data_options_from_checkpoint(args, checkpoint, quiet: bool = False) -> None:
    """``--dataset`` not given (None): the dataset the checkpoint was trained on, with its --data-dir and
    --test-fraction, else mnist-10k (with a note, unless ``quiet``: the command may not read it); a --dataset given
    that is the checkpoint's also takes those two."""
    meta = load_checkpoint(checkpoint)[1]
    recorded = (meta.get("training") or {}).get("options")
    recorded = recorded if isinstance(recorded, dict) and isinstance(recorded.get("dataset"), str) else {}
    if args.dataset is None:
        if "dataset" not in recorded and not quiet:
            note(f"{checkpoint} does not record the dataset it was trained on: using --dataset mnist-10k")
        args.dataset = recorded.get("dataset", "mnist-10k")
    if recorded.get("dataset") is not None and _option_value("dataset", args.dataset) == recorded["dataset"]:
        for name in ("data_dir", "test_fraction"):
            if getattr(args, name, None) is None and recorded.get(name) is not None:
                setattr(args, name, recorded[name])


def use_backend_or_exit(parser, name: str) -> None:
    """Switch to the backend ``name``, or say in one line why it cannot be used and exit with status 2 (for
    scripts with their own argparse parser, such as the examples)."""
    try:
        set_backend(name)
    except BackendError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def add_run_arguments(p, default_out: str) -> None:
    """The options every ``refvae train`` command shares about its run: --out, --resume, --force, --no-progress."""
    p.add_argument("--out", default=default_out, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (the one-line summary of each epoch is still printed)")


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


def int_at_least(minimum: int, hint: str = "", maximum: int | None = None):
    """An argparse ``type``: an integer of at least ``minimum`` (e.g. 1 for a size, 2 for AIS temperatures) and, if
    given, at most ``maximum``, else a one-line error naming the option; ``hint`` is added to it (what to do
    instead)."""
    bounds = f"of at least {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {text!r}{hint}")
        return value

    parse.__name__ = f"integer {bounds}"
    return parse


#: AIS temperatures of ``--ais-betas paper``: Salakhutdinov & Murray's (2008) schedule.
AIS_PAPER_TEMPERATURES = 14500
#: The default number of AIS temperatures: a schedule a CPU user can wait for (about 1/14 of the paper's time).
AIS_DEFAULT_TEMPERATURES = 1000


def ais_temperatures(text):
    """An argparse ``type`` for ``--ais-betas``: an integer >= 2, or ``paper`` for Salakhutdinov & Murray's 14,500."""
    if str(text).strip().lower() == "paper":
        return AIS_PAPER_TEMPERATURES
    return int_at_least(2, " (beta = 0 and beta = 1), or 'paper' for Salakhutdinov & Murray's 14500")(text)


def add_ais_arguments(p) -> None:
    """``--ais-chains`` and ``--ais-betas``: the AIS estimate of a large RBM's log Z (``train rbm``, ``evaluate``)."""
    p.add_argument("--ais-chains", type=positive_int, default=100,
                   help="AIS chains for log Z (when the smaller layer is too large to enumerate)")
    p.add_argument("--ais-betas", type=ais_temperatures, default=AIS_DEFAULT_TEMPERATURES,
                   help=f"AIS temperatures for log Z; 'paper' is Salakhutdinov & Murray's schedule "
                        f"({AIS_PAPER_TEMPERATURES}, about {AIS_PAPER_TEMPERATURES // AIS_DEFAULT_TEMPERATURES} times "
                        "longer; the time is estimated before AIS starts)")


#: An argparse ``type``: a positive integer (counts, epochs).
positive_int = int_at_least(1)
#: An argparse ``type``: a positive number of examples (``--train-size``, ``--test-size``).
positive_size = int_at_least(1, " (leave the option out to use every example)")
#: An argparse ``type``: a seed of the random numbers (every backend's generators take these).
seed_int = int_at_least(0, maximum=2**32 - 1)


def number_in(low=None, high=None, *, low_open: bool = False, high_open: bool = False, hint: str = ""):
    """An argparse ``type``: a finite number in the interval from ``low`` to ``high`` (None: unbounded; ``low_open``
    and ``high_open`` leave the end out), else a one-line error naming the option and the accepted range, e.g.
    ``number_in(0, 1, high_open=True)`` for a momentum in [0, 1). NaN and infinity are never accepted."""
    if low is not None and high is not None:
        bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f"{'>' if low_open else '>='} {low:g}"
    elif high is not None:
        bounds = f"{'<' if high_open else '<='} {high:g}"
    else:
        bounds = "(not NaN or infinite)"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = math.isfinite(value) and (
            low is None or (value > low if low_open else value >= low)) and (
            high is None or (value < high if high_open else value <= high))
        if not inside:
            raise argparse.ArgumentTypeError(f"must be a finite number {bounds}, got {text!r}{hint}")
        return value

    parse.__name__ = f"number {bounds}"
    return parse


#: argparse ``type``s for the models' numeric options (each refuses NaN and infinity, naming the option).
positive_float = number_in(0, low_open=True)                     # a learning rate
nonnegative_float = number_in(0)                                  # a weight decay, an initial scale
momentum_float = number_in(0, 1, high_open=True)                  # a momentum, [0, 1)
#: The smallest variance a float32 model can hold without underflow to zero (its smallest normal number).
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def markdown_cell(text) -> str:
    """``text`` for a Markdown table cell: ``|`` escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def warn(message: str) -> None:
    """Print ``refvae: warning: message`` on stderr (a result to be read with care)."""
    print(f"refvae: warning: {message}", file=sys.stderr, flush=True)


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
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------
# the commands every model shares: evaluate, sample, gradcheck
# ------------------------------------------------------------------------------------------------
def _inputs(args) -> tuple:
    """The files a checkpoint command reads: the checkpoint, and the --dataset file if it is one."""
    return (args.checkpoint, *([args.dataset] if datasets.is_data_file(args.dataset) else []))


def _evaluate(args) -> int:
    model = load_model(args.checkpoint)                 # a checkpoint that cannot be used is refused first
    data_options_from_checkpoint(args, args.checkpoint)
    if args.json:
        check_output_file(args.json, "--json", inputs=_inputs(args))
    evaluator = _EVALUATORS.get(kind_of(model))
    if evaluator is None:
        known = ", ".join(sorted(_EVALUATORS)) or "none"
        raise ValueError(f"refvae evaluate does not handle {type(model).__name__} checkpoints (it handles: {known})")
    return evaluator(model, args)


def _sample(args) -> int:
    B = get_backend()
    model = load_model(args.checkpoint)                 # a checkpoint that cannot be used is refused first
    data_options_from_checkpoint(args, args.checkpoint, quiet=args.source in (None, "prior"))
    out = check_output_file(args.out, "--out", {".png": "an image grid", ".npy": "the raw array"},
                            inputs=_inputs(args))
    sampler = _SAMPLERS.get(kind_of(model))
    if sampler is None:
        known = ", ".join(sorted(_SAMPLERS)) or "none"
        raise ValueError(f"refvae sample does not handle {type(model).__name__} checkpoints (it handles: {known})")
    sources = _SAMPLE_SOURCES.get(kind_of(model), ("prior",))
    if args.source is None:
        args.source = sources[0]
    elif args.source not in sources:
        raise ValueError(f"--source {args.source} is not offered for {type(model).__name__} checkpoints: choose "
                         f"{' or '.join(sources)}")
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
        with atomic_file(out) as f:                                   # complete or not there
            np.save(f, x)
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


def _pages(args) -> int:
    """``refvae pages``: build the annotated reference (:mod:`refvae.pages`) and say where it is."""
    from .pages.site import build_site

    written = build_site(args.out, root=args.root, force=args.force)
    index = Path(args.out) / "index.html"
    print(f"wrote {len(written)} files to {args.out}; open {index}")
    if args.open:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())
    return 0


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
    """An ArgumentParser whose help shows every option's default and whose errors are one line (its subcommands'
    parsers too): ``refvae train vae: error: <message>; see refvae train vae --help``, exit status 2."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}; see {self.prog} --help\n")


def _models_description(train_sub) -> str:
    rows = [(a.dest, a.help or "") for a in train_sub._choices_actions]
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"  {name:<{width}}  {text}" for name, text in rows)


def _add_evaluate_parser(sub) -> None:
    """``refvae evaluate CHECKPOINT``: the options every model's evaluation shares."""
    ev = sub.add_parser("evaluate", help="test ELBO and importance-weighted log-likelihood of a checkpoint")
    ev.add_argument("checkpoint", help="a checkpoint written by refvae train (OUT/checkpoint.npz)")
    add_backend_argument(ev)
    ev.add_argument("--dataset", default=None, help="the test data (default: the dataset the checkpoint was "
                    "trained on, else mnist-10k): " + DATASET_HELP)
    ev.add_argument("--data-dir", default=None, help="directory holding the MNIST IDX files (--dataset mnist); "
                    "without it they are downloaded into $REFVAE_DATA or ~/.cache/refvae/mnist")
    add_test_fraction_argument(ev)
    ev.add_argument("--test-size", type=positive_size, default=None, help="use only the first N test images (default: all)")
    ev.add_argument("--iw-samples", type=positive_int, default=1000,
                    help="importance samples per test image (VAE, Helmholtz machine)")
    ev.add_argument("--seed", type=seed_int, default=0, help="seed of the estimators' random numbers")
    ev.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    add_ais_arguments(ev)
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    ev.set_defaults(run=_evaluate)


def _add_sample_parser(sub) -> None:
    """``refvae sample CHECKPOINT``: the options every model's sampler shares."""
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
    sa.add_argument("--seed", type=seed_int, default=0, help="seed of the samples")
    offered = sorted({src for kind_sources in _SAMPLE_SOURCES.values() for src in kind_sources})
    by_kind = "; ".join(f"{kind}: {', '.join(src)}" for kind, src in sorted(_SAMPLE_SOURCES.items()))
    sa.add_argument("--source", choices=offered or None, default=None,
                    help=f"where the latent draws come from (default: each model's first; {by_kind}). The aggregate "
                         "sources fit the aggregate posterior on the training images of --dataset first")
    sa.add_argument("--dataset", default=None, help="the training data of the aggregate sources (default: the "
                    "dataset the checkpoint was trained on, else mnist-10k): " + DATASET_HELP)
    sa.add_argument("--data-dir", default=None, help="directory holding the MNIST IDX files (--dataset mnist)")
    add_test_fraction_argument(sa)
    sa.set_defaults(run=_sample)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
    parser = Parser(prog="refvae")
    parser.add_argument("--version", action="version", version=f"refvae {__version__}")
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

    _add_evaluate_parser(sub)
    _add_sample_parser(sub)

    for add_parser in _COMMANDS:
        add_parser(sub)

    gc = sub.add_parser("gradcheck", help="float64 finite-difference checks of every model's gradients")
    add_backend_argument(gc)
    gc.add_argument("--seed", type=seed_int, default=0, help="seed of the checks' random inputs")
    gc.set_defaults(run=_gradcheck)

    pg = sub.add_parser("pages", help="build the annotated reference: each model's equations beside its code, as "
                                      "HTML pages read offline")
    pg.add_argument("--out", default="site", help="directory of the site (index.html and one page per model)")
    pg.add_argument("--root", default=None, help="the refvae source tree to build from (default: the one this "
                                                 "program runs from, else the current directory)")
    pg.add_argument("--force", action="store_true", help="replace a site already in OUT instead of refusing")
    pg.add_argument("--open", action="store_true", help="open index.html in the web browser when built")
    pg.set_defaults(run=_pages)
    return parser


#: Library wording -> command-line wording, for errors raised by the library (e.g. the datasets').
_COMMAND_LINE_TERMS = (
    (r"leave data_dir=None", "leave out --data-dir"),
    (r"pass data_dir= pointing at", "pass --data-dir pointing at"),
    (r"data_dir=(?=['\"])", "--data-dir "),
    (r"use load\('mnist', data_dir=\.\.\.\)", "use --dataset mnist --data-dir DIR"),
    (r"use load\('mnist-10k'\)", "use --dataset mnist-10k"),
    (r"pass cache_dir= a writable directory or set REFVAE_DATA", "set REFVAE_DATA to a writable directory"),
    (r"or pass verify=False to read a file you changed on purpose",
     "or, for IDX data of your own, save it as a .npy file and pass --dataset FILE.npy"),
    (r"data_dir=", "--data-dir "),
    (r"\btest_fraction\b", "--test-fraction"),
    (r"hold out fewer for testing", "lower --test-fraction"),
    (r"\b\w+ has (\d+) columns but the model expects (\d+): pass data of shape \(n, \d+\) or build the model with "
     r"x_dim=\d+", lambda match, args: _wrong_width(match, args)),
)


def _wrong_width(match, args) -> str:
    """A model's refusal of data of another width, in the terms of the option that chose the data."""
    return _width_message(getattr(args, "dataset", None) or "(default)", match[1], match[2])


_MODEL_TERMS: list = []        # (pattern, replacement) registered by the models for their own options


def register_command_line_terms(*pairs) -> None:
    """Rewrite a model's library wording in its errors into command-line wording, e.g.
    ``(r"algorithm='([\\w-]+)'", r"--algorithm \\1")``: each pair is a regular expression and its replacement, a
    string or a function ``(match, args) -> str`` of the match and the command's parsed options."""
    for pair in pairs:
        if pair not in _MODEL_TERMS:
            _MODEL_TERMS.append(pair)


def _one_line(err, args=None) -> str:
    """The error's message on one line, in the command line's terms (``--data-dir``, not ``data_dir=``)."""
    parts = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    text = parts[0]
    for part in parts[1:]:
        text += (" " if text.endswith((".", ":", ";", ",")) else ". " if part[0].isupper() else "; ") + part
    for pattern, replacement in (*_COMMAND_LINE_TERMS, *_MODEL_TERMS):
        if callable(replacement):
            text = re.sub(pattern, lambda match, replace=replacement: replace(match, args), text)
        else:
            text = re.sub(pattern, replacement, text)
    return text


def _given_options(argv) -> frozenset:
    """The options given on the command line ``argv`` (by destination): ``argv`` parsed again by a parser whose
    options have no defaults, so that only those given appear (``--help`` keeps showing the real defaults)."""
    parser = build_parser()
    parsers = [parser]
    while parsers:
        for action in parsers.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings:
                action.default = argparse.SUPPRESS
    return frozenset(vars(parser.parse_args(argv)))
def _parse(parser, argv):
    """The parsed options; unknown ones are refused by the parser of the command they were given to."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = " ".join(getattr(args, name) for name in ("command", "model") if getattr(args, name, None))
        prog = f"{parser.prog} {command}".strip()
        parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(unknown)}; see {prog} --help\n")
    return args


def _disk_error(err: OSError, args) -> str:
    """An OSError naming its file in the command line's terms: ``cannot write runs/x/report.md: no space left on
    device; free space or choose another --out``."""
    path = Path(err.filename)
    reason = (err.strerror or str(err)).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    option = None
    for name in ("out", "json"):
        value = getattr(args, name, None)
        if value and (path == Path(value) or Path(value) in path.parents):
            option = f"--{name}"
    elsewhere = f"choose another {option}" if option else "write elsewhere"
    fixes = {errno.ENOSPC: f"free space or {elsewhere}", errno.EDQUOT: f"free space or {elsewhere}",
             errno.EROFS: f"{elsewhere} (this file system is read-only)"}
    if err.errno in fixes:
        return f"cannot write {path}: {reason}; {fixes[err.errno]}"
    if option:
        return f"cannot write {path}: {reason}; {elsewhere} that you may write to"
    return f"cannot use {path}: {reason}; check that it exists and that you may read and write it"


def main(argv=None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    args.explicit_options = _given_options(argv)
    try:
        if getattr(args, "backend", None):           # every command but pages takes --backend
            set_backend(args.backend)
        with np.errstate(all="ignore"):     # a diverging run's overflows: its one-line error says what happened
            return args.run(args)
    except USER_ERRORS as err:
        if isinstance(err, OSError) and err.filename and not isinstance(err, datasets.DatasetError):
            err = _disk_error(err, args)
        print(f"refvae: error: {_one_line(err, args)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("refvae: error: out of memory: the sizes asked for do not fit in this machine's memory; use smaller "
              "sizes (--hidden, --z-dim, --layers, --batch-size, --k, --n, --ais-chains)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refvae: interrupted; the last completed epoch is in the checkpoint (resume with --resume)",
              file=sys.stderr)
        return 130
