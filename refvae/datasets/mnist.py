"""MNIST: the embedded 10,000-image test set and the full set (downloaded, cached and checked, or your own copy).

Where the full MNIST comes from (``datasets.load("mnist")``):

1. ``data_dir=...`` if given: the four standard IDX files, gzipped or not, read as they are.
2. otherwise the cache directory (``cache_dir=``, else ``$REFVAE_DATA``, else ``~/.cache/refvae/mnist``),
   holding the four gzipped files exactly as the mirrors serve them. Every load checks each cached
   file's SHA-256 against :data:`MNIST_SHA256`.
3. missing cached files are downloaded (``download=True``) from the first of :data:`MNIST_MIRRORS`
   that works, into a temporary file in the cache directory that is checked against
   :data:`MNIST_SHA256` and only then renamed into place, so the cache never holds a partial file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from .idx import DatasetError, IDXFormatError, parse_idx, read_idx, read_idx_bytes

__all__ = ["BINARIZATIONS", "MNIST_BINARIZATION_SEED", "MNIST_IDX_SHA256", "MNIST_MIRRORS", "MNIST_SHA256",
           "ChecksumError", "DownloadError", "binarize_once"]

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

#: SHA-256 of the *decompressed* MNIST IDX files (the bytes, whatever the compression): a copy re-compressed
#: with other settings has these, a corrupted or altered one does not. File name (no ``.gz``) -> hex digest.
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: The binarisations ``load`` offers (``binarize=``): None keeps the grey levels in [0, 1];
#: ``"stochastic-once"`` draws each pixel once, x ~ Bernoulli(grey level), with a fixed seed, so every run sees
#: the same binary images (Salakhutdinov & Murray 2008); ``"dynamic"`` returns the grey levels as the Bernoulli
#: means of a fresh draw each time an image is used (Burda et al. 2016): the draw is the training loop's
#: (``refvae.fit(..., binarize="dynamic")``), or :func:`binarize_once` with a generator that goes on.
BINARIZATIONS = (None, "stochastic-once", "dynamic")

#: Default seed of the ``"stochastic-once"`` binarisation (train and test are drawn from one generator, train
#: first).
MNIST_BINARIZATION_SEED = 0

# The four MNIST files, without the ``.gz`` suffix, in the order (train images, train labels,
# test images, test labels).
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# Directory holding the embedded 10k test set.
_DATA_DIR = Path(__file__).parent.parent / "data"

# Size of the train split of "mnist-10k"; the rest is the test split.
_MNIST_10K_TRAIN = 8000

_IMAGE_SHAPE = (28, 28)

# Seconds to wait for a mirror before giving up on it.
_DOWNLOAD_TIMEOUT = 60.0


class ChecksumError(DatasetError, ValueError):
    """A MNIST file's SHA-256 is not the published one."""


class DownloadError(DatasetError, OSError):
    """MNIST could not be downloaded from any mirror (or not written into the cache)."""



def _images_as_rows(images: np.ndarray, path: Path) -> np.ndarray:
    """MNIST images ``(n, 28, 28)`` uint8 as float32 rows ``(n, 784)`` in [0, 1]."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
        raise IDXFormatError(
            f"{path}: expected MNIST images of shape (n, 28, 28) and type uint8, got shape "
            f"{images.shape} and type {images.dtype}; check that this is an image file (idx3-ubyte)"
        )
    if images.shape[0] == 0:
        raise IDXFormatError(f"{path}: the file holds 0 images (its header declares shape {images.shape}); replace "
                             "it with a fresh copy of the MNIST file")
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


def _check_digest(raw: bytes, path: Path, name: str) -> None:
    """Refuse ``raw`` (the decompressed bytes of ``path``) unless its SHA-256 is MNIST_IDX_SHA256[name]."""
    expected = MNIST_IDX_SHA256[name]
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise ChecksumError(
            f"{path} is not the published {name}: the SHA-256 of its decompressed bytes is {actual}, expected "
            f"{expected}; replace it with a fresh copy, or pass verify=False to read a file you changed on purpose")


def _read_mnist_files(paths, verify: bool = False) -> tuple:
    """Read (train images, train labels, test images, test labels) from four IDX paths.

    With ``verify`` each file's decompressed bytes are checked against MNIST_IDX_SHA256 after the format and
    shape checks, so a malformed file is refused for what is wrong with it and a well-formed but altered one for
    its digest."""
    paths = [Path(p) for p in paths]
    raws = [read_idx_bytes(p) for p in paths]
    arrays = [parse_idx(raw, p) for raw, p in zip(raws, paths)]
    train_images_path, train_labels_path, test_images_path, test_labels_path = paths
    x_train = _images_as_rows(arrays[0], train_images_path)
    y_train = _labels_as_int64(arrays[1], train_labels_path, x_train.shape[0])
    x_test = _images_as_rows(arrays[2], test_images_path)
    y_test = _labels_as_int64(arrays[3], test_labels_path, x_test.shape[0])
    if verify:
        for raw, path, name in zip(raws, paths, _MNIST_FILES):
            _check_digest(raw, path, name)
    return x_train, y_train, x_test, y_test


def binarize_once(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Bernoulli draw of grey levels X (n, d) in [0, 1]: ``x = (u < X)`` with u ~ U[0, 1) float64 from ``rng``.

    The same recipe as :func:`refvae.evaluation.binarize_fixed` (tested equal), on host arrays; float32 0/1 rows.
    Called again with the same generator it draws afresh: a dynamic binarisation, one draw per use.
    """
    return (rng.random(X.shape) < X).astype(np.float32)


def _binarized(x_train, x_test, binarize, binarize_seed):
    """Apply the ``binarize`` option (one of BINARIZATIONS) to the train and test grey levels."""
    if binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {BINARIZATIONS}, got {binarize!r}")
    if binarize != "stochastic-once":
        return x_train, x_test
    rng = np.random.default_rng(binarize_seed)
    return binarize_once(x_train, rng), binarize_once(x_test, rng)


def _split(x_train, y_train, x_test, y_test, labels: bool, binarize=None, binarize_seed=MNIST_BINARIZATION_SEED):
    x_train, x_test = _binarized(x_train, x_test, binarize, binarize_seed)
    if labels:
        return (x_train, y_train), (x_test, y_test)
    return x_train, x_test


def _load_mnist_10k(labels: bool, binarize=None, binarize_seed=MNIST_BINARIZATION_SEED):
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
    return _split(x[:k], y[:k], x[k:], y[k:], labels, binarize, binarize_seed)


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


def _load_mnist(labels: bool, data_dir=None, download: bool = True, cache_dir=None, verify: bool = True,
                binarize=None, binarize_seed=MNIST_BINARIZATION_SEED):
    if data_dir is not None:
        paths = _mnist_from_dir(data_dir)
        arrays = _read_mnist_files(paths, verify=bool(verify))
    else:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
        paths = _mnist_from_cache(cache, bool(download))      # each checked against MNIST_SHA256 (the .gz)
        arrays = _read_mnist_files(paths)
    return _split(*arrays, labels, binarize, binarize_seed)
