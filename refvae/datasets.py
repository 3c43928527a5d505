"""Datasets for the models: MNIST (embedded 10k subset or the full set) and bars-and-stripes.

This module is host-side I/O. Everything it returns is a NumPy host array; moving data onto an
accelerator is the caller's (or ``fit``'s) job.

Quick tour::

    from refvae import datasets
    train, test = datasets.load("mnist-10k")                 # (8000, 784), (2000, 784) float32 in [0, 1]
    (x, y), (xt, yt) = datasets.load("mnist", labels=True)  # downloads into the cache on first use
    train, test = datasets.load("mnist", data_dir="~/data/mnist")   # your own copy of the IDX files
    patterns, _ = datasets.load("bars", side=4)             # (30, 16): all bars-and-stripes patterns
    train, test = datasets.load("hinton-bars")              # (20000, 16), (2000, 16) draws of Hinton's bars
    patterns, probs = datasets.data_distribution("hinton-bars")   # the exact data distribution (30 patterns)

Images are returned as float32 rows in [0, 1] (pixel / 255), labels as int64. Binarisation is left to
the training loop.

Where the full MNIST comes from (``load("mnist")``):

1. ``data_dir=...`` if given: the four standard IDX files, gzipped or not, read as they are.
2. otherwise the cache directory (``cache_dir=``, else ``$REFVAE_DATA``, else ``~/.cache/refvae/mnist``),
   holding the four gzipped files exactly as the mirrors serve them. Every load checks each cached
   file's SHA-256 against :data:`MNIST_SHA256`.
3. missing cached files are downloaded (``download=True``) from the first of :data:`MNIST_MIRRORS`
   that works, into a temporary file in the cache directory that is checked against
   :data:`MNIST_SHA256` and only then renamed into place, so the cache never holds a partial file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "ChecksumError",
    "DatasetError",
    "DownloadError",
    "IDXFormatError",
    "bars_and_stripes",
    "data_distribution",
    "hinton_bars",
    "sample_distribution",
    "load",
    "read_idx",
    "write_idx",
]

#: Names accepted by :func:`load`.
DATASETS = ("mnist-10k", "mnist", "bars", "hinton-bars")

#: Base URLs tried in order when downloading MNIST; each must serve the four ``*.gz`` files.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: SHA-256 of the gzipped MNIST files as published (and served by :data:`MNIST_MIRRORS`).
#: File name -> lowercase hex digest.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# The four MNIST files, without the ``.gz`` suffix, in the order (train images, train labels,
# test images, test labels).
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# Directory holding the embedded 10k test set.
_DATA_DIR = Path(__file__).parent / "data"

# Size of the train split of "mnist-10k"; the rest is the test split.
_MNIST_10K_TRAIN = 8000

_IMAGE_SHAPE = (28, 28)

# Seconds to wait for a mirror before giving up on it.
_DOWNLOAD_TIMEOUT = 60.0

# Largest grid side for bars-and-stripes (2**17 - 2 patterns of 256 pixels, about 134 MB).
_BARS_MAX_SIDE = 16

# Keyword arguments each dataset accepts in ``load``.
_LOAD_KWARGS = {
    "mnist-10k": (),
    "mnist": ("data_dir", "download", "cache_dir"),
    "bars": ("side",),
    "hinton-bars": ("side", "p", "p_vertical", "n_train", "n_test", "seed"),
}

# IDX type codes <-> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


class DatasetError(Exception):
    """Base class for errors raised while loading a dataset."""


class IDXFormatError(DatasetError, ValueError):
    """A file is not a valid IDX file (bad magic number, wrong size, broken gzip stream)."""


class ChecksumError(DatasetError, ValueError):
    """A MNIST file's SHA-256 is not the published one."""


class DownloadError(DatasetError, OSError):
    """MNIST could not be downloaded from any mirror (or not written into the cache)."""


# --------------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------------


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the format of the MNIST files) into an array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. It is decompressed with gzip if its name ends with ``.gz`` or its content starts
        with the gzip magic bytes.

    Returns
    -------
    numpy.ndarray
        Array of the shape declared in the header, e.g. ``(10000, 28, 28)`` for MNIST images or
        ``(10000,)`` for labels, in native byte order with the declared type: uint8, int8, int16,
        int32, float32 or float64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IDXFormatError
        If the file is not valid IDX: broken gzip stream, header too short, magic number not
        ``0x0000`` + type code + ndim, unknown type code, or a data section that is shorter or
        longer than the dimensions say.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if path.name.endswith(".gz") or raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXFormatError(
                f"{path}: cannot decompress the gzip stream ({exc}); the file is probably truncated "
                "or corrupted: replace it with a fresh copy"
            ) from exc

    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: only {len(raw)} bytes, too short for the 4-byte IDX magic number; "
            "the file is empty or truncated: replace it with a fresh copy"
        )
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise IDXFormatError(
            f"{path}: not an IDX file: the magic number must start with two zero bytes, got "
            f"0x{raw[:4].hex()}; check that this is an (optionally gzipped) IDX file"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise IDXFormatError(
            f"{path}: unknown IDX data type code 0x{code:02X} in magic number 0x{raw[:4].hex()}; "
            f"valid codes are {known}"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXFormatError(
            f"{path}: header declares {ndim} dimensions ({header_size} header bytes) but the file "
            f"has only {len(raw)} bytes; the file is truncated: replace it with a fresh copy"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in shape):
        raise IDXFormatError(f"{path}: header declares negative dimensions {shape}; the file is corrupted")

    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        what = "truncated" if actual < expected else "longer than declared"
        raise IDXFormatError(
            f"{path}: data section is {what}: header declares shape {shape} of {dtype.name} "
            f"({expected} bytes) but {actual} bytes follow the {header_size}-byte header; "
            "replace the file with a fresh copy"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def write_idx(path, array) -> None:
    """Write an array as an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination. The file is gzip-compressed if the name ends with ``.gz``.
    array : array_like
        Data of dtype uint8, int8, int16, int32, float32 or float64 and any shape with at most 255
        dimensions, each smaller than 2**31.

    Raises
    ------
    ValueError
        If the dtype or shape cannot be stored in IDX.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        names = ", ".join(dt.name for dt in _IDX_CODES)
        raise ValueError(
            f"write_idx: IDX cannot store dtype {array.dtype}; supported dtypes are {names}: "
            f"convert first, e.g. array.astype(np.uint8) or array.astype(np.int32)"
        )
    if array.ndim > 255:
        raise ValueError(f"write_idx: IDX stores at most 255 dimensions, the array has {array.ndim}")
    if any(d >= 2**31 for d in array.shape):
        raise ValueError(f"write_idx: IDX dimensions must be < 2**31, got shape {array.shape}")

    code = _IDX_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)


# --------------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------------


def _images_as_rows(images: np.ndarray, path: Path) -> np.ndarray:
    """MNIST images ``(n, 28, 28)`` uint8 as float32 rows ``(n, 784)`` in [0, 1]."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
        raise IDXFormatError(
            f"{path}: expected MNIST images of shape (n, 28, 28) and type uint8, got shape "
            f"{images.shape} and type {images.dtype}; check that this is an image file (idx3-ubyte)"
        )
    rows = images.reshape(images.shape[0], -1).astype(np.float32)
    rows /= np.float32(255.0)
    return rows


def _labels_as_int64(labels: np.ndarray, path: Path, n_images: int) -> np.ndarray:
    """MNIST labels ``(n,)`` uint8 as int64, checked against the number of images."""
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(
            f"{path}: expected MNIST labels of shape (n,) and type uint8, got shape {labels.shape} "
            f"and type {labels.dtype}; check that this is a label file (idx1-ubyte)"
        )
    if labels.shape[0] != n_images:
        raise IDXFormatError(
            f"{path}: {labels.shape[0]} labels for {n_images} images; the image and label files "
            "do not belong together"
        )
    return labels.astype(np.int64)


def _read_mnist_files(paths) -> tuple:
    """Read (train images, train labels, test images, test labels) from four IDX paths."""
    train_images_path, train_labels_path, test_images_path, test_labels_path = paths
    x_train = _images_as_rows(read_idx(train_images_path), train_images_path)
    y_train = _labels_as_int64(read_idx(train_labels_path), train_labels_path, x_train.shape[0])
    x_test = _images_as_rows(read_idx(test_images_path), test_images_path)
    y_test = _labels_as_int64(read_idx(test_labels_path), test_labels_path, x_test.shape[0])
    return x_train, y_train, x_test, y_test


def _split(x_train, y_train, x_test, y_test, labels: bool):
    if labels:
        return (x_train, y_train), (x_test, y_test)
    return x_train, x_test


def _load_mnist_10k(labels: bool):
    images_path = _DATA_DIR / "t10k-images-idx3-ubyte.gz"
    labels_path = _DATA_DIR / "t10k-labels-idx1-ubyte.gz"
    for p in (images_path, labels_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"the embedded MNIST test set is missing: {p} does not exist. The refvae installation "
                "is incomplete: reinstall it, or use load('mnist', data_dir=...) with your own copy"
            )
    x = _images_as_rows(read_idx(images_path), images_path)
    y = _labels_as_int64(read_idx(labels_path), labels_path, x.shape[0])
    k = _MNIST_10K_TRAIN
    return _split(x[:k], y[:k], x[k:], y[k:], labels)


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _default_cache_dir() -> Path:
    env = os.environ.get("REFVAE_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "refvae" / "mnist"


def _fetch(url: str, dest) -> None:
    """Download ``url`` into the file ``dest`` (overwriting it). Raises OSError on failure.

    Kept as a separate module-level function so that tests can replace it.
    """
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def _offline_hint() -> str:
    files = ", ".join(f"{name}[.gz]" for name in _MNIST_FILES)
    return (
        f"pass data_dir= pointing at a directory that holds the IDX files ({files}), "
        "or use load('mnist-10k'), which ships with refvae and needs no download"
    )


def _download(fname: str, cache_dir: Path) -> Path:
    """Download the MNIST file ``fname`` into ``cache_dir``, verified and written atomically."""
    expected = MNIST_SHA256[fname]
    dest = cache_dir / fname
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the MNIST cache directory {cache_dir} ({exc}): pass cache_dir= a writable "
            f"directory or set REFVAE_DATA; or {_offline_hint()}"
        ) from exc

    failures = []
    mismatches = []
    for base in MNIST_MIRRORS:
        url = base.rstrip("/") + "/" + fname
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=cache_dir)
        except OSError as exc:
            raise DownloadError(
                f"cannot write into the MNIST cache directory {cache_dir} ({exc}): pass cache_dir= a "
                f"writable directory or set REFVAE_DATA; or {_offline_hint()}"
            ) from exc
        os.close(fd)
        try:
            try:
                _fetch(url, tmp)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                failures.append(f"  {url}: {exc}")
                continue
            actual = _sha256_file(tmp)
            if actual != expected:
                failures.append(f"  {url}: served a file with sha256 {actual}")
                mismatches.append(actual)
                continue
            os.replace(tmp, dest)
            return dest
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    tried = "\n".join(failures) if failures else "  (MNIST_MIRRORS is empty)"
    if mismatches:
        raise ChecksumError(
            f"downloaded {fname} does not have the published sha256: expected {expected}, "
            f"got {mismatches[-1]}. Nothing was written to {cache_dir}. Mirrors tried:\n{tried}\n"
            f"A proxy or a changed mirror may be altering the file; {_offline_hint()}"
        )
    raise DownloadError(
        f"could not download {fname} from any MNIST mirror (no network?). Mirrors tried:\n{tried}\n"
        f"To work offline, {_offline_hint()}"
    )


def _mnist_from_cache(cache_dir: Path, download: bool) -> list:
    """Paths of the four verified gzipped MNIST files in ``cache_dir``, downloading missing ones."""
    paths = []
    for name in _MNIST_FILES:
        fname = name + ".gz"
        path = cache_dir / fname
        if path.is_file():
            expected = MNIST_SHA256[fname]
            actual = _sha256_file(path)
            if actual != expected:
                raise ChecksumError(
                    f"cached MNIST file {path} is corrupted or not the published file: sha256 expected "
                    f"{expected}, got {actual}. Delete {path} so that it is downloaded again, or pass "
                    "data_dir= pointing at your own copy of the IDX files"
                )
        elif download:
            path = _download(fname, cache_dir)
        else:
            raise FileNotFoundError(
                f"MNIST file {path} is not in the cache and download=False: pass download=True to "
                f"fetch it, or {_offline_hint()}"
            )
        paths.append(path)
    return paths


def _mnist_from_dir(data_dir) -> list:
    """Paths of the four MNIST IDX files in ``data_dir`` (plain preferred over ``.gz``)."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"data_dir={str(data_dir)!r} is not a directory: pass the directory that holds the MNIST "
            "IDX files, or leave data_dir=None to use the download cache"
        )
    paths = []
    for name in _MNIST_FILES:
        candidates = (data_dir / name, data_dir / (name + ".gz"))
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            present = sorted(p.name for p in data_dir.iterdir())
            raise FileNotFoundError(
                f"MNIST file {name} (or {name}.gz) not found in data_dir={str(data_dir)!r}, which "
                f"holds {present}. The directory needs all of: "
                + ", ".join(f"{n}[.gz]" for n in _MNIST_FILES)
                + " (standard names, e.g. 't10k-images.idx3-ubyte' must be renamed)"
            )
        paths.append(found)
    return paths


def _load_mnist(labels: bool, data_dir=None, download: bool = True, cache_dir=None):
    if data_dir is not None:
        paths = _mnist_from_dir(data_dir)
    else:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
        paths = _mnist_from_cache(cache, bool(download))
    return _split(*_read_mnist_files(paths), labels)


# --------------------------------------------------------------------------------------------------
# Bars and stripes
# --------------------------------------------------------------------------------------------------


def _check_side(side) -> int:
    if isinstance(side, bool) or not hasattr(side, "__index__"):
        raise ValueError(f"side must be an integer between 1 and {_BARS_MAX_SIDE}, got {side!r}")
    side = int(side)
    if not 1 <= side <= _BARS_MAX_SIDE:
        raise ValueError(
            f"side must be between 1 and {_BARS_MAX_SIDE}, got {side}: a side x side grid has "
            f"2**(side+1) - 2 patterns, so pick a small grid such as side=4 (30 patterns)"
        )
    return side


def bars_and_stripes(side: int = 4) -> np.ndarray:
    """All distinct bars-and-stripes patterns on a ``side`` x ``side`` grid.

    A pattern is made by choosing an orientation, then switching each of the ``side`` rows (or
    columns) fully on or off. The all-off and all-on grids arise in both orientations and are kept
    once, leaving ``2**(side+1) - 2`` distinct patterns.

    Parameters
    ----------
    side : int, default 4
        Grid side, between 1 and 16.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(2**(side+1) - 2, side*side)`` with values in {0, 1}; each row is a
        grid flattened in row-major order. Rows are sorted lexicographically (so the all-off grid
        comes first and the all-on grid last), which makes the order deterministic.
    """
    side = _check_side(side)
    # on[m, i] says whether line i is on in pattern number m (bit i of m).
    on = (np.arange(2**side)[:, None] >> np.arange(side)[None, :]) & 1
    rows = np.repeat(on[:, :, None], side, axis=2)  # (2**side, side, side): row i constant
    cols = np.transpose(rows, (0, 2, 1))  # column j constant
    grids = np.concatenate([rows, cols]).reshape(-1, side * side)
    return np.unique(grids, axis=0).astype(np.float32)


def _bars_labels(patterns: np.ndarray, side: int) -> np.ndarray:
    """0 = horizontal stripes (rows), 1 = vertical bars (columns), 2 = blank or full grid."""
    grids = patterns.reshape(-1, side, side)
    blank_or_full = np.all(grids == grids[:, :1, :1], axis=(1, 2))
    rows_constant = np.all(grids == grids[:, :, :1], axis=(1, 2))
    y = np.where(rows_constant, 0, 1)
    y[blank_or_full] = 2
    return y.astype(np.int64)


def _load_bars(labels: bool, side: int = 4):
    patterns = bars_and_stripes(side)
    if labels:
        y = _bars_labels(patterns, side)
        return (patterns, y), (patterns.copy(), y.copy())
    return patterns, patterns.copy()


# --------------------------------------------------------------------------------------------------
# Hinton's bars, and the exact distributions of the toy datasets
# --------------------------------------------------------------------------------------------------


def _check_probability(value, name, open_interval=False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a probability, got {value!r}") from None
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok:
        raise ValueError(f"{name} must be in {'(0, 1)' if open_interval else '[0, 1]'}, got {value}")
    return value


def hinton_bars(side: int = 4, p: float = 0.2, p_vertical: float = 2.0 / 3.0):
    """The exact distribution of Hinton's bars (Hinton, Dayan, Frey & Neal, Science 1995).

    An image on a ``side`` x ``side`` grid is made by choosing the orientation, vertical with probability
    ``p_vertical`` and horizontal otherwise, then switching each of the ``side`` bars of that orientation on
    independently with probability ``p``. With k of the side bars on::

        P(image) = P(orientation) p^k (1 - p)^(side - k)

    The blank and the full grid can be made in both orientations; their probabilities add (the blank has
    (1 - p)^side, 0.4096 at the defaults). The 1995 paper's setting is the default: 4 x 4, p = 0.2,
    vertical with probability 2/3.

    Returns
    -------
    patterns : numpy.ndarray, (2**(side+1) - 2, side*side) float32 in {0, 1}
        Every image with non-zero probability, sorted as in :func:`bars_and_stripes`.
    probs : numpy.ndarray, (2**(side+1) - 2,) float64
        Their probabilities (they sum to 1 to rounding).
    """
    side = _check_side(side)
    p = _check_probability(p, "p", open_interval=True)
    p_vertical = _check_probability(p_vertical, "p_vertical")
    patterns = bars_and_stripes(side)
    grids = patterns.reshape(-1, side, side).astype(bool)
    rows_constant = np.all(grids == grids[:, :, :1], axis=(1, 2))      # horizontal bars: each row constant
    cols_constant = np.all(grids == grids[:, :1, :], axis=(1, 2))      # vertical bars: each column constant
    k_rows = grids[:, :, 0].sum(axis=1)                                # horizontal bars that are on
    k_cols = grids[:, 0, :].sum(axis=1)                                # vertical bars that are on
    probs = np.zeros(patterns.shape[0])
    probs += np.where(rows_constant, (1.0 - p_vertical) * p ** k_rows * (1.0 - p) ** (side - k_rows), 0.0)
    probs += np.where(cols_constant, p_vertical * p ** k_cols * (1.0 - p) ** (side - k_cols), 0.0)
    return patterns, probs


def data_distribution(name: str, **kwargs):
    """The exact data distribution of a toy dataset: ``(patterns, probs)``, every pattern with non-zero probability.

    ``"bars"``: the bars-and-stripes patterns, uniform (keyword ``side``). ``"hinton-bars"``: see
    :func:`hinton_bars` (keywords ``side``, ``p``, ``p_vertical``). With it, KL(data || model) of a model whose
    log-likelihood can be computed exactly is ``sum(probs * (log(probs) - model_log_prob(patterns)))``
    (:func:`refvae.evaluation.kl_data_model`).
    """
    if name == "bars":
        unexpected = sorted(set(kwargs) - {"side"})
        if unexpected:
            raise TypeError(f"data_distribution('bars') got unexpected keyword arguments {unexpected}; it accepts side")
        patterns = bars_and_stripes(kwargs.get("side", 4))
        return patterns, np.full(patterns.shape[0], 1.0 / patterns.shape[0])
    if name == "hinton-bars":
        unexpected = sorted(set(kwargs) - {"side", "p", "p_vertical"})
        if unexpected:
            raise TypeError(f"data_distribution('hinton-bars') got unexpected keyword arguments {unexpected}; "
                            "it accepts side, p, p_vertical")
        return hinton_bars(**kwargs)
    raise ValueError(f"no exact distribution is known for dataset {name!r}: only for 'bars' and 'hinton-bars'")


def sample_distribution(patterns, probs, n: int, seed: int = 0) -> np.ndarray:
    """``n`` independent draws (rows of ``patterns``, float32) from the discrete distribution ``probs``."""
    if isinstance(n, bool) or not hasattr(n, "__index__") or int(n) < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.shape[0] != len(patterns) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
        raise ValueError("probs must be one non-negative probability per pattern, summing to 1")
    index = np.random.default_rng(seed).choice(len(patterns), size=int(n), p=probs / probs.sum())
    return np.asarray(patterns, dtype=np.float32)[index]


def _load_hinton_bars(labels: bool, side: int = 4, p: float = 0.2, p_vertical: float = 2.0 / 3.0,
                      n_train: int = 20000, n_test: int = 2000, seed: int = 0):
    patterns, probs = hinton_bars(side, p, p_vertical)
    train = sample_distribution(patterns, probs, n_train, seed=seed)
    test = sample_distribution(patterns, probs, n_test, seed=seed + 1_000_003)
    if labels:
        return (train, _bars_labels(train, side)), (test, _bars_labels(test, side))
    return train, test


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def load(name: str, labels: bool = False, **kwargs):
    """Load a dataset as ``(train, test)`` NumPy arrays.

    Parameters
    ----------
    name : {"mnist-10k", "mnist", "bars"}
        ``"mnist-10k"``
            The 10,000 MNIST test images embedded in refvae (no download): train is the first
            8,000, test the last 2,000. No keyword arguments.
        ``"mnist"``
            The full MNIST, 60,000 train and 10,000 test images. Keyword arguments:

            ``data_dir`` : str or path, optional
                Read ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
                ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each plain or ``.gz``,
                the plain one preferred) from this directory, without checksums. ``download`` and
                ``cache_dir`` are then ignored.
            ``download`` : bool, default True
                Download missing files into the cache from :data:`MNIST_MIRRORS`.
            ``cache_dir`` : str or path, optional
                Cache directory; default ``$REFVAE_DATA`` if set, else ``~/.cache/refvae/mnist``.
                Cached files are checked against :data:`MNIST_SHA256` on every load.
        ``"bars"``
            All ``2**(side+1) - 2`` bars-and-stripes patterns (see :func:`bars_and_stripes`).
            Train and test are the *same* full set (as separate copies): the dataset is for
            checking that a model can learn a known distribution exactly, not for generalisation.
            Keyword argument ``side`` : int, default 4.
        ``"hinton-bars"``
            Hinton's bars (:func:`hinton_bars`): ``n_train`` (default 20000) and ``n_test`` (default 2000)
            independent draws from the exact distribution, seeded by ``seed`` (default 0). Keywords
            ``side`` (4), ``p`` (0.2), ``p_vertical`` (2/3), ``n_train``, ``n_test``, ``seed``.
    labels : bool, default False
        Also return labels.
    **kwargs
        Dataset-specific options, listed above.

    Returns
    -------
    (train, test) : tuple of numpy.ndarray
        With ``labels=False``. Each is float32 of shape ``(n, d)`` with values in [0, 1]:
        ``d = 784`` for MNIST (pixel / 255, rows of 28 x 28 images in row-major order),
        ``d = side*side`` for bars.
    ((train, train_labels), (test, test_labels)) : tuple of tuples
        With ``labels=True``; labels are int64 of shape ``(n,)``. MNIST labels are the digits 0-9.
        Bars labels are 0 = horizontal stripes (each row constant), 1 = vertical bars (each column
        constant), 2 = the blank or the full grid (both at once).

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists :data:`DATASETS`) or bad option value.
    TypeError
        A keyword argument the dataset does not take.
    FileNotFoundError
        MNIST files missing from ``data_dir``, or from the cache with ``download=False``.
    DownloadError
        MNIST could not be downloaded (e.g. offline).
    ChecksumError
        A cached or downloaded MNIST file does not have the published SHA-256.
    IDXFormatError
        An MNIST file is not valid IDX or not the expected kind of file.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(map(repr, DATASETS))}")
    allowed = _LOAD_KWARGS[name]
    unexpected = sorted(set(kwargs) - set(allowed))
    if unexpected:
        accepts = ", ".join(allowed) if allowed else "no keyword arguments besides labels"
        raise TypeError(f"load({name!r}) got unexpected keyword arguments {unexpected}; it accepts {accepts}")
    labels = bool(labels)
    if name == "mnist-10k":
        return _load_mnist_10k(labels)
    if name == "mnist":
        return _load_mnist(labels, **kwargs)
    if name == "hinton-bars":
        return _load_hinton_bars(labels, **kwargs)
    return _load_bars(labels, **kwargs)
