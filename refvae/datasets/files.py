"""Your own data from a file: ``.npy``, ``.npz`` or ``.csv``, checked, with a fixed held-out split.

    train, test = load_file("my.npy")                         # 10 % of the rows held out for testing
    (x, y), (xt, yt) = load_file("my.npz", labels=True)       # the file's own 'train' and 'test' arrays

What a file may hold:

* ``.npy``: one numeric array, read with ``allow_pickle=False`` (an array of Python objects is refused).
* ``.npz``: one array under any name, or the arrays ``train`` and optionally ``test``, ``train_labels`` and
  ``test_labels`` (labels: integers, one per row; they colour the VAE's latent plot). Any other name is refused,
  so that a misspelt ``tset`` is not silently ignored.
* ``.csv``: comma-separated numbers, one example per line, with at most one header line (a first line that is
  not all numbers); lines starting with ``#`` are comments.

Every array is 2-D, one example per row, ``(n, d)``, or 3-D images ``(n, height, width)``, flattened to rows of
``height * width`` values in row-major order. Values must be real numbers (booleans and integers are converted to
float32), finite in float32, and, with ``unit_interval=True`` (a Bernoulli likelihood: the VAE's default, the RBM,
the Helmholtz machine), in [0, 1].

Held-out split: a file without a test part of its own has ``round(test_fraction * n)`` of its rows (at least one)
held out for testing, a fixed random choice (seeded by :data:`SPLIT_SEED`, whatever the model's seed), so that every
run and every evaluation of the same file holds out the same rows. Both parts keep the file's order.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .idx import DatasetError

__all__ = ["FILE_SUFFIXES", "SPLIT_SEED", "TEST_FRACTION", "DataFileError", "is_data_file", "load_file", "split_rows"]

#: The kinds of file :func:`load_file` reads.
FILE_SUFFIXES = (".npy", ".npz", ".csv")
#: Share of a file's rows held out for testing when the file has no test part of its own.
TEST_FRACTION = 0.1
#: Seed of the fixed random choice of held-out rows (independent of the model's seed).
SPLIT_SEED = 20231
#: Arrays an ``.npz`` file may hold besides one array under any name.
NPZ_KEYS = ("train", "test", "train_labels", "test_labels")


class DataFileError(DatasetError, ValueError):
    """A data file that cannot be used: missing, of an unknown kind, unreadable, or holding unusable values."""


def is_data_file(name) -> bool:
    """Whether ``name`` names a data file for :func:`load_file` (ends in .npy, .npz or .csv), not a dataset name."""
    return Path(str(name)).suffix.lower() in FILE_SUFFIXES


def load_file(path, labels: bool = False, test_fraction: float | None = None, *, unit_interval: bool = False,
              range_fix: str = "rescale them into [0, 1] (e.g. pixels / 255)", min_train: int = 1):
    """Load a data file as ``(train, test)``, float32 arrays of shape ``(n, d)`` and ``(m, d)``.

    Parameters
    ----------
    path : str or path
        A ``.npy``, ``.npz`` or ``.csv`` file (module docstring: what each may hold).
    labels : bool
        Also return the labels: ``((train, train_labels), (test, test_labels))``, int64 of shape ``(n,)``, or None
        where the file has none.
    test_fraction : float in (0, 1), optional
        Share of the rows held out for testing (default :data:`TEST_FRACTION`) when the file has no test part;
        refused for a file with its own ``test`` array.
    unit_interval : bool
        Require values in [0, 1] (a Bernoulli likelihood); ``range_fix`` says how to fix values outside.
    min_train : int
        The fewest training rows the caller can use.

    Raises
    ------
    DataFileError
        One line naming the file, what is wrong and how to fix it.
    """
    path = Path(path).expanduser()
    parts = _read(path)
    parts = {key: (_labels(a, path, key) if key.endswith("_labels") else _rows(a, path, key, unit_interval, range_fix))
             for key, a in parts.items()}
    train, test = parts["train"], parts.get("test")
    y_train, y_test = parts.get("train_labels"), parts.get("test_labels")
    _check_parts(path, train, test, y_train, y_test)
    if test is None:
        fraction = _fraction(test_fraction, path)
        train_rows, test_rows = split_rows(train.shape[0], fraction, path)
        train, test = train[train_rows], train[test_rows]
        if y_train is not None:
            y_train, y_test = y_train[train_rows], y_train[test_rows]
    elif test_fraction is not None:
        raise DataFileError(f"{path} has a test part of its own (its 'test' array): leave out test_fraction")
    if train.shape[0] < min_train:
        raise DataFileError(f"{path} gives {train.shape[0]} training rows; at least {min_train} are needed: add rows"
                            + (" or hold out fewer for testing" if "test" not in parts else ""))
    return ((train, y_train), (test, y_test)) if labels else (train, test)


def split_rows(n: int, test_fraction: float = TEST_FRACTION, path="the data"):
    """(train rows, test rows): index arrays, each in increasing order, with ``max(1, round(test_fraction * n))``
    test rows chosen at random with the fixed seed :data:`SPLIT_SEED` (at least one row left for training)."""
    if n < 2:
        raise DataFileError(f"{path} has {n} row(s): holding out test rows needs at least 2 (one example per row)")
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    order = np.random.Generator(np.random.PCG64(SPLIT_SEED)).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _fraction(value, path) -> float:
    if value is None:
        return TEST_FRACTION
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise DataFileError(f"test_fraction must be a number between 0 and 1 (exclusive) for {path}, got {value!r}")
    return float(value)


def _read(path: Path) -> dict:
    """The file's arrays as they are: {"train": ..., and "test", "train_labels", "test_labels" where present}."""
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DataFileError(f"{path} is not a data file refvae reads: pass a .npy, .npz or .csv file")
    if not path.exists():
        raise DataFileError(f"no data file at {path}: check the path")
    if path.is_dir():
        raise DataFileError(f"{path} is a directory: pass a {suffix} file")
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                return {"train": np.lib.format.read_array(f, allow_pickle=False)}
        if suffix == ".npz":
            return _read_npz(path)
        return {"train": _read_csv(path)}
    except DataFileError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise DataFileError(f"cannot read {path} as a {suffix} file ({_reason(err)}): {_HOW_TO_SAVE[suffix]}") from None


_HOW_TO_SAVE = {
    ".npy": "save a numeric array with numpy.save(path, X)",
    ".npz": "save numeric arrays with numpy.savez(path, train=X) (and test=, train_labels=, test_labels=)",
    ".csv": "write comma-separated numbers, one example per line, with at most one header line",
}


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if "allow_pickle" in text:
        return "it holds Python objects, which refvae does not unpickle"
    return text.split("; use `usecols`")[0]


def _read_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataFileError(f"{path} is not an .npz archive (it holds one array): rename it to .npy")
        names = list(z.files)
        if len(names) == 1 and names[0] not in NPZ_KEYS[1:]:
            return {"train": z[names[0]]}
        unknown = [name for name in names if name not in NPZ_KEYS]
        if "train" not in names or unknown:
            raise DataFileError(f"{path} holds the arrays {', '.join(names) or 'none'}: an .npz data file holds one "
                                f"array, or 'train' and optionally {', '.join(map(repr, NPZ_KEYS[1:]))}")
        return {name: z[name] for name in names}


def _read_csv(path: Path):
    with open(path, encoding="utf-8") as f:
        first = next((line for line in f if line.strip() and not line.lstrip().startswith("#")), "")
    header = 0 if _numbers(first) else 1                      # a first line that is not all numbers: column names
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)      # "input contained no data": refused later as 0 rows
            return np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, skiprows=header, encoding="utf-8")
    except ValueError:
        raise DataFileError(f"{path}: {_first_bad_line(path, header)}: {_HOW_TO_SAVE['.csv']}") from None


def _numbers(line: str) -> bool:
    try:
        [float(field) for field in line.split(",")]
    except ValueError:
        return False
    return True


def _first_bad_line(path: Path, header: int) -> str:
    """Where a CSV file stops being a table of numbers: 'line 3 is not all numbers' or the line whose width differs."""
    width, seen = None, 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            seen += 1
            if seen <= header:
                continue
            if not _numbers(line.split("#")[0]):
                return f"line {number} is not all numbers ({line.strip()[:40]!r})"
            fields = len(line.split("#")[0].split(","))
            if width is not None and fields != width:
                return f"line {number} has {fields} values, the lines before it {width}"
            width = fields
    return "it is not a table of numbers"


def _rows(a, path: Path, key: str, unit_interval: bool, range_fix: str):
    """``a`` checked and as float32 rows (n, d): numeric, 2-D (or 3-D images, flattened), finite, in range."""
    what = f"{path}" if key == "train" else f"{path} ({key!r})"
    a = np.asarray(a)
    if a.dtype.kind == "c":
        raise DataFileError(f"{what} holds complex numbers: save real values (X.real if the imaginary part is zero)")
    if a.dtype.kind not in "biuf":
        raise DataFileError(f"{what} holds {a.dtype} values, not numbers: save a numeric array")
    if a.ndim == 3:
        a = a.reshape(a.shape[0], -1)                         # images (n, height, width) -> rows (n, height*width)
    if a.ndim != 2 or a.shape[1] == 0:
        raise DataFileError(f"{what} has shape {a.shape}: save one example per row, (n, d), or images "
                            "(n, height, width)" + (", e.g. X.reshape(-1, 1) for one value per example"
                                                     if a.ndim == 1 else ""))
    if a.shape[0] == 0:
        raise DataFileError(f"{what} has no rows: save at least one example per row")
    with np.errstate(over="ignore"):
        x = a.astype(np.float32)                              # a value beyond float32's range becomes inf: refused
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataFileError(f"{what} holds {int(bad.sum())} NaN, infinite or float32-overflowing value(s), the first "
                            f"at row {row}, column {col} (counting from 0): clean or impute them")
    if unit_interval and (x.min() < 0.0 or x.max() > 1.0):
        raise DataFileError(f"{what} has values in [{x.min():g}, {x.max():g}], but the model needs values in [0, 1]: "
                            f"{range_fix}")
    return x


def _labels(a, path: Path, key: str):
    a = np.asarray(a)
    if a.ndim != 1 or a.dtype.kind not in "biu":
        raise DataFileError(f"{path} ({key!r}) must hold one integer label per row, shape (n,); got {a.dtype} of "
                            f"shape {a.shape}")
    return a.astype(np.int64)


def _check_parts(path, train, test, y_train, y_test) -> None:
    if test is not None and test.shape[1] != train.shape[1]:
        raise DataFileError(f"{path}: 'train' has {train.shape[1]} values per row but 'test' has {test.shape[1]}: "
                            "save both parts with the same width")
    for y, x, part in ((y_train, train, "train"), (y_test, test, "test")):
        if y is not None and (x is None or y.shape[0] != x.shape[0]):
            raise DataFileError(f"{path}: '{part}_labels' has {y.shape[0]} labels for "
                                f"{0 if x is None else x.shape[0]} '{part}' rows: save one label per row")
