"""Datasets for the models: MNIST (embedded 10k subset or the full set), bars-and-stripes, Hinton's bars, and your own
data from a ``.npy``, ``.npz`` or ``.csv`` file.

The package: ``idx.py`` reads and writes IDX files, ``mnist.py`` finds MNIST (embedded, cached, downloaded),
``toys.py`` builds the toy laws, ``files.py`` reads and checks data files (:func:`load_file`); this module is the
one entry point, :func:`load`.

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
    train, test = datasets.load("my.npy", test_fraction=0.2)   # your own (n, d) array; 20 % of its rows held out

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

from .idx import DatasetError, IDXFormatError, read_idx, read_idx_bytes, write_idx
from .mnist import (BINARIZATIONS, MNIST_BINARIZATION_SEED, MNIST_IDX_SHA256, MNIST_MIRRORS, MNIST_SHA256, ChecksumError,
                    DownloadError, _load_mnist, _load_mnist_10k, binarize_once)
from .files import FILE_SUFFIXES, SPLIT_SEED, TEST_FRACTION, DataFileError, is_data_file, load_file, split_rows
from .toys import _load_bars, _load_hinton_bars, bars_and_stripes, data_distribution, hinton_bars, sample_distribution

__all__ = [
    "BINARIZATIONS",
    "DATASETS",
    "FILE_SUFFIXES",
    "MNIST_BINARIZATION_SEED",
    "MNIST_IDX_SHA256",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "SPLIT_SEED",
    "TEST_FRACTION",
    "ChecksumError",
    "DataFileError",
    "DatasetError",
    "DownloadError",
    "IDXFormatError",
    "bars_and_stripes",
    "binarize_once",
    "data_distribution",
    "hinton_bars",
    "is_data_file",
    "load_file",
    "split_rows",
    "sample_distribution",
    "load",
    "read_idx",
    "read_idx_bytes",
    "write_idx",
]

#: Names accepted by :func:`load`.
DATASETS = ("mnist-10k", "mnist", "bars", "hinton-bars")

# Keyword arguments each dataset accepts in ``load``.
_LOAD_KWARGS = {
    "mnist-10k": ("binarize", "binarize_seed"),
    "mnist": ("data_dir", "download", "cache_dir", "verify", "binarize", "binarize_seed"),
    "bars": ("side",),
    "hinton-bars": ("side", "p", "p_vertical", "n_train", "n_test", "seed"),
}


def load(name: str, labels: bool = False, **kwargs):
    """Load a dataset as ``(train, test)`` NumPy arrays.

    Parameters
    ----------
    name : {"mnist-10k", "mnist", "bars", "hinton-bars"} or a path ending in .npy, .npz or .csv
        ``"mnist-10k"``
            The 10,000 MNIST test images embedded in refvae (no download): train is the first
            8,000, test the last 2,000. Keywords ``binarize`` and ``binarize_seed`` as for ``"mnist"``.
        ``"mnist"``
            The full MNIST, the standard split of 60,000 train and 10,000 test images. Keyword arguments:

            ``data_dir`` : str or path, optional
                Read ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
                ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each plain or ``.gz``,
                the plain one preferred) from this directory. ``download`` and ``cache_dir`` are then
                ignored.
            ``verify`` : bool, default True
                With ``data_dir``: check the SHA-256 of each file's decompressed bytes against
                :data:`MNIST_IDX_SHA256`, so a re-compressed copy is accepted and a corrupted one refused
                (ChecksumError). False reads files that are not the published ones (your own IDX data).
            ``download`` : bool, default True
                Download missing files into the cache from :data:`MNIST_MIRRORS`.
            ``cache_dir`` : str or path, optional
                Cache directory; default ``$REFVAE_DATA`` if set, else ``~/.cache/refvae/mnist``.
                Cached files are checked against :data:`MNIST_SHA256` on every load.
            ``binarize`` : {None, "stochastic-once", "dynamic"}, default None
                The binarisations of the papers (:data:`BINARIZATIONS`). None and ``"dynamic"`` return the
                grey levels; ``"dynamic"`` (Burda et al. 2016) means they are the Bernoulli means of a fresh
                draw at each use, which ``refvae.fit(..., binarize="dynamic")`` makes per batch (or
                :func:`binarize_once` with a generator that goes on). ``"stochastic-once"`` (Salakhutdinov & Murray 2008)
                returns binary float32 images, each pixel drawn once: ``u < grey`` with u ~ U[0, 1) float64
                from ``numpy.random.default_rng(binarize_seed)``, the train images first, then the test
                images, so the same seed gives the same binary data everywhere.
            ``binarize_seed`` : int, default :data:`MNIST_BINARIZATION_SEED` (0)
        ``"bars"``
            All ``2**(side+1) - 2`` bars-and-stripes patterns (see :func:`bars_and_stripes`).
            Train and test are the *same* full set (as separate copies): the dataset is for
            checking that a model can learn a known distribution exactly, not for generalisation.
            Keyword argument ``side`` : int, default 4.
        ``"hinton-bars"``
            Hinton's bars (:func:`hinton_bars`): ``n_train`` (default 20000) and ``n_test`` (default 2000)
            independent draws from the exact distribution, seeded by ``seed`` (default 0). Keywords
            ``side`` (4), ``p`` (0.2), ``p_vertical`` (2/3), ``n_train``, ``n_test``, ``seed``.
        a path ending in ``.npy``, ``.npz`` or ``.csv``
            Your own data, read and checked by :func:`load_file` (what the files may hold, the 3-D images it
            flattens, the fixed held-out split); keyword ``test_fraction`` (default :data:`TEST_FRACTION`), the
            share of the rows held out when the file has no test part. Labels are None where the file has none.
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
    DataFileError
        A data file that is missing or cannot be used (one line naming the file and the fix).
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
    if not (isinstance(name, str) and name in DATASETS) and is_data_file(name):
        unexpected = sorted(set(kwargs) - {"test_fraction"})
        if unexpected:
            raise TypeError(f"load({str(name)!r}) got unexpected keyword arguments {unexpected}; a data file "
                            "accepts test_fraction")
        return load_file(name, labels=bool(labels), **kwargs)
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: known datasets are {', '.join(map(repr, DATASETS))}, or "
                         f"a data file ending in {', '.join(FILE_SUFFIXES)}")
    allowed = _LOAD_KWARGS[name]
    unexpected = sorted(set(kwargs) - set(allowed))
    if unexpected:
        accepts = ", ".join(allowed) if allowed else "no keyword arguments besides labels"
        raise TypeError(f"load({name!r}) got unexpected keyword arguments {unexpected}; it accepts {accepts}")
    labels = bool(labels)
    if name == "mnist-10k":
        return _load_mnist_10k(labels, **kwargs)
    if name == "mnist":
        return _load_mnist(labels, **kwargs)
    if name == "hinton-bars":
        return _load_hinton_bars(labels, **kwargs)
    return _load_bars(labels, **kwargs)
