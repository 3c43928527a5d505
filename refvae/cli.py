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
what was wrong and how to fix it, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
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

__all__ = ["add_backend_argument", "build_parser", "image_shape", "load_from_args", "load_labeled", "main",
           "parse_hidden", "register_command", "register_evaluator", "register_train_command", "write_json"]

USER_ERRORS = (BackendError, CheckpointError, DataError, TrainingError, ValueError, FileNotFoundError)

_TRAIN_COMMANDS: list = []     # add_parser(train_subparsers): each adds "refvae train <model>"
_COMMANDS: list = []           # add_parser(subparsers): each adds a command of its own
_EVALUATORS: dict = {}         # model kind (class name) -> fn(model, args) -> exit status


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
    if n_train:
        train, y_train = train[:n_train], y_train[:n_train]
    if n_test:
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


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON (NumPy scalars become numbers)."""
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


# ------------------------------------------------------------------------------------------------
# the commands every model shares: evaluate, sample, gradcheck
# ------------------------------------------------------------------------------------------------
def _evaluate(args) -> int:
    model = load_model(args.checkpoint)
    evaluator = _EVALUATORS.get(kind_of(model))
    if evaluator is None:
        known = ", ".join(sorted(_EVALUATORS)) or "none"
        raise ValueError(f"refvae evaluate does not handle {type(model).__name__} checkpoints (it handles: {known})")
    return evaluator(model, args)


def _sample(args) -> int:
    B = get_backend()
    model = load_model(args.checkpoint)
    x = B.to_numpy(model.sample(args.n, mean=not args.binary, seed=args.seed))
    out = Path(args.out)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x)
    else:
        plot_image_grid(x, out, image_shape=image_shape(x.shape[1]), title=f"{args.n} samples")
    print(f"wrote {args.n} samples to {out}")
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
def build_parser() -> argparse.ArgumentParser:
    """The parser of every registered command."""
    parser = argparse.ArgumentParser(prog="refvae", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model, evaluate it, write checkpoint, metrics and plots")
    train_sub = train.add_subparsers(dest="model", required=True)
    for add_parser in _TRAIN_COMMANDS:
        add_parser(train_sub)

    ev = sub.add_parser("evaluate", help="test ELBO and importance-weighted log-likelihood of a checkpoint")
    ev.add_argument("checkpoint")
    add_backend_argument(ev)
    ev.add_argument("--dataset", default="mnist-10k")
    ev.add_argument("--data-dir", default=None)
    ev.add_argument("--iw-samples", type=int, default=1000, help="importance samples (VAE, Helmholtz machine)")
    ev.add_argument("--test-size", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    ev.add_argument("--ais-chains", type=int, default=100, help="AIS chains for a large RBM's log Z")
    ev.add_argument("--ais-betas", type=int, default=14500, help="AIS temperatures for a large RBM's log Z")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(run=_evaluate)

    sa = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid (or .npy)")
    sa.add_argument("checkpoint")
    add_backend_argument(sa)
    sa.add_argument("--n", type=int, default=100)
    sa.add_argument("--out", default="samples.png", help="a .png image grid, or .npy for the raw array")
    sa.add_argument("--binary", action="store_true", help="draw x ~ p(x|z) instead of the decoder's mean")
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(run=_sample)

    for add_parser in _COMMANDS:
        add_parser(sub)

    gc = sub.add_parser("gradcheck", help="float64 finite-difference checks of every model's gradients")
    add_backend_argument(gc)
    gc.add_argument("--seed", type=int, default=0)
    gc.set_defaults(run=_gradcheck)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.backend:
            set_backend(args.backend)
        return args.run(args)
    except USER_ERRORS as err:
        print(f"refvae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refvae: interrupted; the last completed epoch is in the checkpoint (resume with --resume)",
              file=sys.stderr)
        return 130
