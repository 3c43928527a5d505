"""Tests for refvae.datasets: IDX I/O, the embedded MNIST subset, MNIST from a directory or the
download cache (downloads faked, fully offline), and bars-and-stripes."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from refvae import datasets

MNIST_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of the *decompressed* MNIST test files, as published widely; the embedded gzip wrappers
# differ from the published .gz files (re-compressed), but their content must be exactly this.
T10K_RAW_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def fake_mnist_arrays(n_train=12, n_test=5, seed=0):
    """Small random MNIST-like arrays: {file name: array}."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }


@pytest.fixture
def fake_remote(tmp_path):
    """Fake MNIST '.gz' files (as a mirror would serve them) and their digests."""
    arrays = fake_mnist_arrays()
    remote = tmp_path / "remote"
    remote.mkdir()
    digests = {}
    for name, arr in arrays.items():
        datasets.write_idx(remote / (name + ".gz"), arr)
        digests[name + ".gz"] = hashlib.sha256((remote / (name + ".gz")).read_bytes()).hexdigest()
    return arrays, remote, digests


@pytest.fixture
def fake_download(monkeypatch, fake_remote):
    """Replace the downloader by a copy from the fake remote; record the URLs asked for."""
    arrays, remote, digests = fake_remote
    calls = []

    def fetch(url, dest):
        calls.append(url)
        fname = url.rsplit("/", 1)[-1]
        with open(dest, "wb") as f:
            f.write((remote / fname).read_bytes())

    monkeypatch.setattr(datasets.mnist, "_fetch", fetch)
    monkeypatch.setattr(datasets.mnist, "MNIST_SHA256", dict(digests))
    monkeypatch.setattr(datasets.mnist, "MNIST_MIRRORS", ("https://mirror-a.invalid/mnist/",))
    return arrays, calls


def check_fake_mnist(result, arrays):
    (x, y), (xt, yt) = result
    assert x.shape == (12, 784) and xt.shape == (5, 784)
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x, arrays["train-images-idx3-ubyte"].reshape(12, 784) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(xt, arrays["t10k-images-idx3-ubyte"].reshape(5, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])


# --------------------------------------------------------------------------------------------------
# mnist-10k
# --------------------------------------------------------------------------------------------------


def test_mnist_10k_shapes_dtype_range():
    train, test = datasets.load("mnist-10k")
    assert train.shape == (8000, 784) and test.shape == (2000, 784)
    for x in (train, test):
        assert x.dtype == np.float32
        assert x.min() == 0.0 and x.max() == 1.0


def test_mnist_10k_labels_and_mean():
    (x, y), (xt, yt) = datasets.load("mnist-10k", labels=True)
    assert y.shape == (8000,) and yt.shape == (2000,)
    assert y.dtype == np.int64 and yt.dtype == np.int64
    np.testing.assert_array_equal(y[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    assert set(np.unique(np.concatenate([y, yt]))) == set(range(10))
    mean = np.concatenate([x, xt]).astype(np.float64).mean()
    assert abs(mean - 33.79 / 255) < 1e-4
    # labels=False returns the same images
    train, test = datasets.load("mnist-10k")
    np.testing.assert_array_equal(train, x)
    np.testing.assert_array_equal(test, xt)


def test_mnist_10k_pixels_are_multiples_of_1_over_255():
    train, _ = datasets.load("mnist-10k")
    scaled = train[:100].astype(np.float64) * 255
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-4)


@pytest.mark.parametrize("fname", sorted(T10K_RAW_SHA256))
def test_embedded_files_are_the_published_mnist_test_set(fname):
    raw = gzip.decompress((datasets.mnist._DATA_DIR / fname).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == T10K_RAW_SHA256[fname]


def test_mnist_10k_takes_no_data_options():
    with pytest.raises(TypeError, match="data_dir"):
        datasets.load("mnist-10k", data_dir="/somewhere")


# --------------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-128, -1, 0, 1, 127], dtype=np.int8),
        np.array([[-32768, -2, 300], [7, 0, 32767]], dtype=np.int16),
        np.array([-(2**31), -70000, 0, 2**31 - 1], dtype=np.int32),
        np.array([[1.5, -2.25], [np.inf, 1e-30]], dtype=np.float32),
        np.array([np.pi, -1e300, 0.0], dtype=np.float64).reshape(3, 1, 1),
        np.zeros((0, 5), dtype=np.uint8),
    ],
    ids=["uint8", "int8", "int16", "int32", "float32", "float64", "empty"],
)
def test_idx_round_trip(tmp_path, array, suffix):
    path = tmp_path / ("a.idx" + suffix)
    datasets.write_idx(path, array)
    back = datasets.read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "a.idx"
    datasets.write_idx(path, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:14] == bytes([0, 1])  # first value, big-endian
    assert len(raw) == 12 + 6 * 2


def test_idx_gzip_detected_by_magic(tmp_path):
    gz = tmp_path / "a.idx.gz"
    array = np.arange(10, dtype=np.int32)
    datasets.write_idx(gz, array)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    renamed = tmp_path / "a.idx"
    renamed.write_bytes(gz.read_bytes())
    np.testing.assert_array_equal(datasets.read_idx(renamed), array)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_truncated_file(tmp_path, suffix):
    good = tmp_path / "good.idx"
    datasets.write_idx(good, np.ones((3, 4), dtype=np.float32))
    raw = good.read_bytes()[:-1]
    bad = tmp_path / ("bad.idx" + suffix)
    bad.write_bytes(gzip.compress(raw) if suffix else raw)
    with pytest.raises(datasets.IDXFormatError, match=r"truncated.*\(3, 4\).*48 bytes.*47 bytes") as info:
        datasets.read_idx(bad)
    assert str(bad) in str(info.value)


def test_idx_over_long_file(tmp_path):
    path = tmp_path / "long.idx"
    datasets.write_idx(path, np.ones(5, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(datasets.IDXFormatError, match=r"longer than declared.*5 bytes.*7 bytes"):
        datasets.read_idx(path)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "hdr.idx"
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 2]))  # 3 dims declared, 1 given
    with pytest.raises(datasets.IDXFormatError, match="3 dimensions"):
        datasets.read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(datasets.IDXFormatError, match="too short"):
        datasets.read_idx(path)


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(bytes([1, 0, 0x08, 1, 0, 0, 0, 1, 42]))
    with pytest.raises(datasets.IDXFormatError, match="two zero bytes") as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_idx_unknown_type_code(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 42]))
    with pytest.raises(datasets.IDXFormatError, match="0x0A"):
        datasets.read_idx(path)


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "a.idx.gz"
    datasets.write_idx(path, np.arange(1000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(datasets.IDXFormatError, match="gzip"):
        datasets.read_idx(path)


def test_idx_errors_are_value_errors(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x07\x07\x07\x07")
    with pytest.raises(ValueError):
        datasets.read_idx(path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "nope.idx")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16])
def test_write_idx_unsupported_dtype(tmp_path, dtype):
    with pytest.raises(ValueError, match="astype"):
        datasets.write_idx(tmp_path / "a.idx", np.zeros(3, dtype=dtype))
    assert not (tmp_path / "a.idx").exists()


# --------------------------------------------------------------------------------------------------
# mnist from data_dir
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_data_dir(tmp_path, gz):
    arrays = fake_mnist_arrays()
    for name, arr in arrays.items():
        datasets.write_idx(tmp_path / (name + (".gz" if gz else "")), arr)
    check_fake_mnist(datasets.load("mnist", labels=True, data_dir=tmp_path, download=False, verify=False), arrays)
    train, test = datasets.load("mnist", data_dir=str(tmp_path), verify=False)
    assert train.shape == (12, 784) and test.shape == (5, 784)


def test_mnist_data_dir_mixed_compression(tmp_path):
    arrays = fake_mnist_arrays()
    for i, (name, arr) in enumerate(arrays.items()):
        datasets.write_idx(tmp_path / (name + (".gz" if i % 2 else "")), arr)
    check_fake_mnist(datasets.load("mnist", labels=True, data_dir=tmp_path, verify=False), arrays)


def test_mnist_data_dir_missing_file(tmp_path):
    arrays = fake_mnist_arrays()
    for name, arr in arrays.items():
        if name != "t10k-labels-idx1-ubyte":
            datasets.write_idx(tmp_path / name, arr)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load("mnist", data_dir=tmp_path)


def test_mnist_data_dir_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        datasets.load("mnist", data_dir=tmp_path / "missing")


def test_mnist_data_dir_label_count_mismatch(tmp_path):
    arrays = fake_mnist_arrays()
    arrays["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:11]
    for name, arr in arrays.items():
        datasets.write_idx(tmp_path / name, arr)
    with pytest.raises(datasets.IDXFormatError, match="11 labels for 12 images"):
        datasets.load("mnist", data_dir=tmp_path)


def test_mnist_data_dir_swapped_files(tmp_path):
    arrays = fake_mnist_arrays()
    for name, arr in arrays.items():
        datasets.write_idx(tmp_path / name, arr)
    # labels where images are expected
    datasets.write_idx(tmp_path / "train-images-idx3-ubyte", arrays["train-labels-idx1-ubyte"])
    with pytest.raises(datasets.IDXFormatError, match=r"\(n, 28, 28\)"):
        datasets.load("mnist", data_dir=tmp_path)


# --------------------------------------------------------------------------------------------------
# mnist from data_dir: the decompressed bytes' SHA-256
# --------------------------------------------------------------------------------------------------
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture
def published_fakes(tmp_path, monkeypatch):
    """Fake MNIST arrays whose raw IDX digests stand in for the published ones."""
    arrays = fake_mnist_arrays()
    raw_dir = _mkdir(tmp_path / "raw")
    digests = {}
    for name, arr in arrays.items():
        datasets.write_idx(raw_dir / name, arr)
        digests[name] = hashlib.sha256((raw_dir / name).read_bytes()).hexdigest()
    monkeypatch.setattr(datasets.mnist, "MNIST_IDX_SHA256", digests)
    return arrays, raw_dir


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_issue_digests_are_the_checked_ones():
    assert datasets.MNIST_IDX_SHA256 == {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}


@pytest.mark.parametrize("level", [1, 9])
def test_a_recompressed_copy_is_accepted(published_fakes, tmp_path, level):
    arrays, raw_dir = published_fakes
    copy = _mkdir(tmp_path / f"gz{level}")
    for name in arrays:
        (copy / (name + ".gz")).write_bytes(gzip.compress((raw_dir / name).read_bytes(), compresslevel=level))
    check_fake_mnist(datasets.load("mnist", labels=True, data_dir=copy), arrays)
    check_fake_mnist(datasets.load("mnist", labels=True, data_dir=raw_dir), arrays)


def test_the_embedded_recompressed_test_files_pass_the_published_digest():
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = datasets.mnist._DATA_DIR / (name + ".gz")
        datasets.mnist._check_digest(datasets.read_idx_bytes(path), path, name)     # raises if not


@pytest.mark.parametrize("name", MNIST_NAMES)
def test_a_corrupted_copy_is_refused_in_one_line(published_fakes, name):
    arrays, raw_dir = published_fakes
    raw = bytearray((raw_dir / name).read_bytes())
    raw[-1] ^= 0x01                                       # one bit of the last pixel or label: still valid IDX
    (raw_dir / name).write_bytes(bytes(raw))
    with pytest.raises(datasets.ChecksumError) as info:
        datasets.load("mnist", data_dir=raw_dir)
    message = str(info.value)
    assert "\n" not in message and str(raw_dir / name) in message and "verify=False" in message
    assert datasets.mnist.MNIST_IDX_SHA256[name] in message
    # verify=False reads it as it is
    (x, y), (xt, yt) = datasets.load("mnist", data_dir=raw_dir, labels=True, verify=False)
    assert x.shape == (12, 784) and yt.shape == (5,)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"the full MNIST is not at {SHARED_MNIST}")
def test_the_full_mnist_standard_split():
    (x, y), (xt, yt) = datasets.load("mnist", data_dir=SHARED_MNIST, labels=True)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784) and x.dtype == np.float32
    assert y.shape == (60000,) and yt.shape == (10000,)
    # the published class counts of the training set, and the first labels of each split
    np.testing.assert_array_equal(np.bincount(y, minlength=10),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(y[:5], [5, 0, 4, 1, 9])
    np.testing.assert_array_equal(yt[:5], [7, 2, 1, 0, 4])
    # the embedded set is the last 2,000 of the same test images
    _, t10k_test = datasets.load("mnist-10k")
    np.testing.assert_array_equal(xt[8000:], t10k_test)


# --------------------------------------------------------------------------------------------------
# binarisations
# --------------------------------------------------------------------------------------------------
def test_binarize_options_are_the_papers():
    assert datasets.BINARIZATIONS == (None, "stochastic-once", "dynamic")


def test_stochastic_once_is_one_fixed_draw(tmp_path):
    arrays = fake_mnist_arrays(n_train=200, n_test=50)
    for name, arr in arrays.items():
        datasets.write_idx(tmp_path / name, arr)
    grey, grey_test = datasets.load("mnist", data_dir=tmp_path, verify=False)
    a, at = datasets.load("mnist", data_dir=tmp_path, verify=False, binarize="stochastic-once")
    b, bt = datasets.load("mnist", data_dir=tmp_path, verify=False, binarize="stochastic-once")
    c, _ = datasets.load("mnist", data_dir=tmp_path, verify=False, binarize="stochastic-once", binarize_seed=1)
    assert a.dtype == np.float32 and set(np.unique(a)) == {0.0, 1.0} and set(np.unique(at)) == {0.0, 1.0}
    np.testing.assert_array_equal(a, b)                      # the same seed: the same binary images
    np.testing.assert_array_equal(at, bt)
    assert (a != c).mean() > 0.1                             # another seed: another draw
    # the recipe: u < grey with u ~ U[0, 1) float64 from default_rng(seed), train first, then test
    rng = np.random.default_rng(datasets.MNIST_BINARIZATION_SEED)
    np.testing.assert_array_equal(a, rng.random(grey.shape) < grey)
    np.testing.assert_array_equal(at, rng.random(grey_test.shape) < grey_test)
    # a draw of the grey levels: the mean pixel within 5 standard errors of the mean grey level
    se = np.sqrt((grey * (1 - grey)).sum()) / grey.size
    assert abs(a.mean() - grey.mean()) < 5 * se


def test_stochastic_once_is_refvae_evaluation_recipe():
    train, _ = datasets.load("mnist-10k")
    once, _ = datasets.load("mnist-10k", binarize="stochastic-once", binarize_seed=1234)
    from refvae.evaluation import binarize_fixed
    np.testing.assert_array_equal(once, binarize_fixed(train, seed=1234))


def test_dynamic_returns_the_grey_levels_and_binarize_once_draws_afresh_from_a_going_generator():
    grey, grey_test = datasets.load("mnist-10k")
    dyn, dyn_test = datasets.load("mnist-10k", binarize="dynamic")
    np.testing.assert_array_equal(dyn, grey)
    np.testing.assert_array_equal(dyn_test, grey_test)
    rng = np.random.default_rng(0)
    first, second = datasets.binarize_once(grey[:500], rng), datasets.binarize_once(grey[:500], rng)
    assert set(np.unique(first)) == {0.0, 1.0} and first.dtype == np.float32
    ambiguous = (grey[:500] > 0.2) & (grey[:500] < 0.8)
    assert (first != second)[ambiguous].mean() > 0.3          # fresh draws differ where the grey level is mid-way
    assert ((first != second) & ((grey[:500] == 0) | (grey[:500] == 1))).sum() == 0


@pytest.mark.parametrize("bad", ["static", "once", True])
def test_an_unknown_binarisation_is_refused(bad):
    with pytest.raises(ValueError, match="binarize must be one of"):
        datasets.load("mnist-10k", binarize=bad)


# --------------------------------------------------------------------------------------------------
# mnist download cache (downloads faked)
# --------------------------------------------------------------------------------------------------


def test_mnist_download_caches_and_verifies(tmp_path, fake_download):
    arrays, calls = fake_download
    cache = tmp_path / "cache"
    check_fake_mnist(datasets.load("mnist", labels=True, cache_dir=cache), arrays)
    assert sorted(calls) == sorted(f"https://mirror-a.invalid/mnist/{n}.gz" for n in MNIST_NAMES)
    assert sorted(p.name for p in cache.iterdir()) == sorted(n + ".gz" for n in MNIST_NAMES)
    for p in cache.iterdir():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == datasets.mnist.MNIST_SHA256[p.name]
    # second load: served from the cache, no download
    calls.clear()
    check_fake_mnist(datasets.load("mnist", labels=True, cache_dir=cache, download=False), arrays)
    assert calls == []


def test_mnist_cache_dir_from_environment(tmp_path, monkeypatch, fake_download):
    _, calls = fake_download
    monkeypatch.setenv("REFVAE_DATA", str(tmp_path / "envcache"))
    train, test = datasets.load("mnist")
    assert train.shape == (12, 784) and test.shape == (5, 784)
    assert len(calls) == 4
    assert (tmp_path / "envcache" / "train-images-idx3-ubyte.gz").is_file()


def test_mnist_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("REFVAE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.mnist._default_cache_dir() == tmp_path / ".cache" / "refvae" / "mnist"
    monkeypatch.setenv("REFVAE_DATA", str(tmp_path / "x"))
    assert datasets.mnist._default_cache_dir() == tmp_path / "x"


def test_mnist_corrupted_cache_file(tmp_path, fake_download):
    _, calls = fake_download
    cache = tmp_path / "cache"
    datasets.load("mnist", cache_dir=cache)
    victim = cache / "t10k-images-idx3-ubyte.gz"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    calls.clear()
    with pytest.raises(datasets.ChecksumError) as info:
        datasets.load("mnist", cache_dir=cache)
    msg = str(info.value)
    assert str(victim) in msg
    assert datasets.mnist.MNIST_SHA256[victim.name] in msg
    assert hashlib.sha256(bytes(data)).hexdigest() in msg
    assert "Delete" in msg and "data_dir" in msg
    assert calls == []  # no silent re-download


def test_mnist_download_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch, fake_download):
    bad = dict(datasets.mnist.MNIST_SHA256)
    bad["train-labels-idx1-ubyte.gz"] = "0" * 64
    monkeypatch.setattr(datasets.mnist, "MNIST_SHA256", bad)
    cache = tmp_path / "cache"
    with pytest.raises(datasets.ChecksumError, match="train-labels-idx1-ubyte.gz.*expected 0{64}"):
        datasets.load("mnist", cache_dir=cache)
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["train-images-idx3-ubyte.gz"]  # the file before it; no partial or temp files


def test_mnist_mirror_fallback(tmp_path, monkeypatch, fake_download):
    _, calls = fake_download
    good_fetch = datasets.mnist._fetch

    def flaky(url, dest):
        calls.append(url)
        if "mirror-a" in url:
            raise urllib.error.URLError("connection refused")
        good_fetch(url, dest)

    monkeypatch.setattr(datasets.mnist, "_fetch", flaky)
    mirrors = ("https://mirror-a.invalid/mnist/", "https://mirror-b.invalid/m")  # 2nd: no trailing slash
    monkeypatch.setattr(datasets.mnist, "MNIST_MIRRORS", mirrors)
    train, _ = datasets.load("mnist", cache_dir=tmp_path)
    assert train.shape == (12, 784)
    assert "https://mirror-b.invalid/m/train-images-idx3-ubyte.gz" in calls
    assert sum("mirror-a" in u for u in calls) == 4


def test_mnist_no_network_message(tmp_path, monkeypatch):
    def offline(url, dest):
        with open(dest, "wb") as f:
            f.write(b"partial")  # a failed transfer may leave bytes behind
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(datasets.mnist, "_fetch", offline)
    cache = tmp_path / "cache"
    with pytest.raises(datasets.DownloadError) as info:
        datasets.load("mnist", cache_dir=cache)
    msg = str(info.value)
    assert "data_dir=" in msg and "mnist-10k" in msg
    for mirror in datasets.mnist.MNIST_MIRRORS:
        assert mirror in msg
    assert isinstance(info.value, OSError)
    assert list(cache.iterdir()) == []  # nothing partial left in the cache


def test_mnist_missing_cache_without_download(tmp_path, monkeypatch):
    def fail(url, dest):  # pragma: no cover - must not be called
        raise AssertionError("download attempted with download=False")

    monkeypatch.setattr(datasets.mnist, "_fetch", fail)
    with pytest.raises(FileNotFoundError, match="download=True.*data_dir="):
        datasets.load("mnist", cache_dir=tmp_path, download=False)


def test_real_fetch_with_file_urls(tmp_path, monkeypatch, fake_remote):
    """The real downloader end to end, offline, through file:// URLs."""
    arrays, remote, digests = fake_remote
    monkeypatch.setattr(datasets.mnist, "MNIST_SHA256", digests)
    monkeypatch.setattr(
        datasets.mnist, "MNIST_MIRRORS", ((tmp_path / "missing").as_uri() + "/", remote.as_uri() + "/")
    )
    cache = tmp_path / "cache"
    check_fake_mnist(datasets.load("mnist", labels=True, cache_dir=cache), arrays)
    assert sorted(os.listdir(cache)) == sorted(n + ".gz" for n in MNIST_NAMES)


def test_published_digests():
    assert set(datasets.mnist.MNIST_SHA256) == {n + ".gz" for n in MNIST_NAMES}
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in datasets.mnist.MNIST_SHA256.values())
    assert datasets.mnist.MNIST_SHA256["t10k-labels-idx1-ubyte.gz"].endswith("defaefb259924204aec6")
    assert all(m.startswith("https://") for m in datasets.mnist.MNIST_MIRRORS)


# --------------------------------------------------------------------------------------------------
# bars and stripes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [1, 2, 3, 4])
def test_bars_count_unique_and_structure(side):
    p = datasets.bars_and_stripes(side)
    assert p.shape == (2 ** (side + 1) - 2, side * side)
    assert p.dtype == np.float32
    assert set(np.unique(p)) <= {0.0, 1.0}
    assert len(np.unique(p, axis=0)) == len(p)
    grids = p.reshape(-1, side, side)
    rows_const = np.all(grids == grids[:, :, :1], axis=(1, 2))
    cols_const = np.all(grids == grids[:, :1, :], axis=(1, 2))
    assert np.all(rows_const | cols_const)


def test_bars_side2_explicit():
    p = datasets.bars_and_stripes(2)
    expected = {
        (0, 0, 0, 0), (1, 1, 1, 1),
        (1, 1, 0, 0), (0, 0, 1, 1),  # one row on
        (1, 0, 1, 0), (0, 1, 0, 1),  # one column on
    }
    assert {tuple(int(v) for v in row) for row in p} == expected


def test_bars_sorted_deterministic():
    p = datasets.bars_and_stripes(4)
    order = np.lexsort(p.T[::-1])
    np.testing.assert_array_equal(order, np.arange(len(p)))
    np.testing.assert_array_equal(p, datasets.bars_and_stripes(4))


def test_load_bars_labels():
    (x, y), (xt, yt) = datasets.load("bars", labels=True, side=3)
    assert x.shape == (14, 9) and y.shape == (14,) and y.dtype == np.int64
    np.testing.assert_array_equal(x, xt)
    np.testing.assert_array_equal(y, yt)
    assert np.sum(y == 2) == 2 and np.sum(y == 0) == 6 and np.sum(y == 1) == 6
    grids = x.reshape(-1, 3, 3)
    for g, label in zip(grids, y):
        if label == 0:
            assert np.all(g == g[:, :1]) and not np.all(g == g[:1, :])
        elif label == 1:
            assert np.all(g == g[:1, :]) and not np.all(g == g[:, :1])
        else:
            assert np.all(g == g[0, 0])


def test_load_bars_default_and_copies():
    train, test = datasets.load("bars")
    assert train.shape == (30, 16)
    train[0, 0] = 5.0
    assert test[0, 0] == 0.0  # train and test do not share memory


@pytest.mark.parametrize("side", [0, -1, 17, 2.5, True, "4"])
def test_bars_bad_side(side):
    with pytest.raises(ValueError, match="side"):
        datasets.bars_and_stripes(side)


# --------------------------------------------------------------------------------------------------
# load() argument handling
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cifar10", "MNIST", "", None])
def test_unknown_dataset_lists_names(name):
    with pytest.raises(ValueError) as info:
        datasets.load(name)
    for known in datasets.DATASETS:
        assert repr(known) in str(info.value)


def test_unexpected_keyword():
    with pytest.raises(TypeError, match="side"):
        datasets.load("bars", sides=3)


# --------------------------------------------------------------------------------------------------
# your own data: load_file (.npy, .npz, .csv)
# --------------------------------------------------------------------------------------------------

OWN = np.random.default_rng(7).random((40, 6)).astype(np.float32)   # 40 examples of 6 values in [0, 1]


def _write_csv(path, X, header=None):
    lines = ([header] if header else []) + [",".join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", ["npy", "npz-one", "csv", "csv-header", "npy-images", "npy-uint8", "npy-bool"])
def test_load_file_reads_every_kind_as_float32_rows(kind, tmp_path):
    """Each kind of file gives the same rows: float32 (n, d), 10 % held out (4 of 40), both parts in file order."""
    X = OWN
    path = tmp_path / f"own.{kind.split('-')[0]}"
    if kind == "npy":
        np.save(path, X)
    elif kind == "npz-one":
        np.savez(path, X)                                     # one array under numpy's own name, arr_0
    elif kind == "csv":
        _write_csv(path, X)
    elif kind == "csv-header":
        _write_csv(path, X, header="a,b,c,d,e,f")
    elif kind == "npy-images":                                # (n, 2, 3) images -> rows of 6, row-major
        np.save(path, X.reshape(40, 2, 3))
    elif kind == "npy-uint8":
        X = (X > 0.5).astype(np.float32)
        np.save(path, X.astype(np.uint8))
    else:
        X = (X > 0.5).astype(np.float32)
        np.save(path, X > 0.5)
    train, test = datasets.load(str(path))
    assert train.dtype == np.float32 and test.dtype == np.float32
    assert train.shape == (36, 6) and test.shape == (4, 6)
    train_rows, test_rows = datasets.split_rows(40, 0.1)
    np.testing.assert_array_equal(train, X[train_rows])
    np.testing.assert_array_equal(test, X[test_rows])
    assert np.all(np.diff(train_rows) > 0) and np.all(np.diff(test_rows) > 0)
    assert sorted([*train_rows, *test_rows]) == list(range(40))


def test_the_held_out_split_is_fixed_and_follows_test_fraction(tmp_path):
    """The same rows for every call (a fixed seed, not the model's), round(F n) of them, at least 1, at most n - 1."""
    path = tmp_path / "own.npy"
    np.save(path, OWN)
    first, second = datasets.load_file(path, test_fraction=0.25), datasets.load_file(path, test_fraction=0.25)
    np.testing.assert_array_equal(first[1], second[1])
    assert first[1].shape == (10, 6) and first[0].shape == (30, 6)
    train_rows, test_rows = datasets.split_rows(40, 0.25)
    assert len(test_rows) == 10 and not set(train_rows) & set(test_rows)
    assert not np.array_equal(test_rows, np.arange(30, 40))  # a random choice, not the last rows
    assert len(datasets.split_rows(5, 0.01)[1]) == 1 and len(datasets.split_rows(5, 0.99)[0]) == 1
    assert [len(datasets.split_rows(n, 0.1)[1]) for n in (2, 10, 14, 15, 16)] == [1, 1, 1, 2, 2]


def test_an_npz_with_its_own_test_part_and_labels(tmp_path):
    path = tmp_path / "own.npz"
    labels = np.arange(40) % 3
    np.savez(path, train=OWN[:30], test=OWN[30:], train_labels=labels[:30], test_labels=labels[30:])
    (x, y), (xt, yt) = datasets.load(str(path), labels=True)
    np.testing.assert_array_equal(x, OWN[:30])
    np.testing.assert_array_equal(xt, OWN[30:])
    assert y.dtype == np.int64 and list(y) == list(labels[:30]) and list(yt) == list(labels[30:])
    with pytest.raises(datasets.DataFileError, match="has a test part of its own"):
        datasets.load_file(path, test_fraction=0.2)
    np.savez(path, train=OWN, train_labels=labels)           # no test part: the labels are split with the rows
    (x, y), (xt, yt) = datasets.load_file(path, labels=True)
    train_rows, test_rows = datasets.split_rows(40)
    assert list(y) == list(labels[train_rows]) and list(yt) == list(labels[test_rows])
    np.save(tmp_path / "plain.npy", OWN)
    (_, y), (_, yt) = datasets.load_file(tmp_path / "plain.npy", labels=True)
    assert y is None and yt is None                           # a file without labels


def _bad_file(kind, tmp_path):
    """(path, the words the one-line error must hold) for one kind of unusable data file."""
    path = tmp_path / {"csv": "bad.csv", "npz": "bad.npz"}.get(kind.split("-")[0], "bad.npy")
    if kind == "1-d":
        np.save(path, OWN[:, 0])
        return path, "has shape (40,): save one example per row"
    if kind == "4-d":
        np.save(path, OWN.reshape(40, 1, 2, 3))
        return path, "has shape (40, 1, 2, 3)"
    if kind == "nan":
        X = OWN.copy()
        X[3, 2] = np.nan
        np.save(path, X)
        return path, "holds 1 NaN, infinite or float32-overflowing value(s), the first at row 3, column 2"
    if kind == "float32-overflow":
        np.save(path, np.full((4, 2), 1e39))
        return path, "holds 8 NaN, infinite or float32-overflowing value(s)"
    if kind == "outside-unit-interval":
        np.save(path, OWN * 3.0 - 1.0)
        return path, "but the model needs values in [0, 1]: rescale them"
    if kind == "one-row":
        np.save(path, OWN[:1])
        return path, "has 1 row(s): holding out test rows needs at least 2"
    if kind == "objects":
        np.save(path, np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)
        return path, "it holds Python objects, which refvae does not unpickle"
    if kind == "complex":
        np.save(path, OWN.astype(np.complex64))
        return path, "holds complex numbers"
    if kind == "strings":
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
        return path, "holds <U1 values, not numbers"
    if kind == "not-npy":
        path.write_bytes(b"hello, not an array")
        return path, "cannot read"
    if kind == "missing":
        return tmp_path / "missing.npy", "no data file at"
    if kind == "directory":
        (tmp_path / "folder.npy").mkdir()
        return tmp_path / "folder.npy", "is a directory"
    if kind == "other-suffix":
        (tmp_path / "data.txt").write_text("1,2\n")
        return tmp_path / "data.txt", "pass a .npy, .npz or .csv file"
    if kind == "csv-text":
        path.write_text("a,b\n1,2\n3,oops\n")
        return path, "line 3 is not all numbers ('3,oops')"
    if kind == "csv-ragged":
        path.write_text("1,2\n3,4\n5\n")
        return path, "line 3 has 1 values, the lines before it 2"
    if kind == "csv-empty":
        path.write_text("")
        return path, "has no rows"
    if kind == "npz-names":
        np.savez(path, tarin=OWN, test=OWN)
        return path, "holds the arrays tarin, test: an .npz data file holds one array, or 'train'"
    if kind == "npz-widths":
        np.savez(path, train=OWN, test=OWN[:, :3])
        return path, "'train' has 6 values per row but 'test' has 3"
    if kind == "npz-labels":
        np.savez(path, train=OWN, train_labels=np.arange(39))
        return path, "'train_labels' has 39 labels for 40 'train' rows"
    raise AssertionError(kind)


BAD_FILES = ["1-d", "4-d", "nan", "float32-overflow", "outside-unit-interval", "one-row", "objects", "complex",
             "strings", "not-npy", "missing", "directory", "other-suffix", "csv-text", "csv-ragged", "csv-empty",
             "npz-names", "npz-widths", "npz-labels"]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_unusable_data_files_are_refused_in_one_line_naming_the_file(kind, tmp_path):
    path, words = _bad_file(kind, tmp_path)
    with pytest.raises(datasets.DataFileError) as info:
        datasets.load_file(path, unit_interval=True)
    message = str(info.value)
    assert words in message and path.name in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_values_outside_the_unit_interval_are_fine_without_a_bernoulli_likelihood(tmp_path):
    np.save(tmp_path / "wide.npy", OWN * 3.0 - 1.0)
    train, test = datasets.load_file(tmp_path / "wide.npy")
    assert train.min() < 0.0 and train.shape == (36, 6)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True, "0.2"])
def test_bad_test_fraction(fraction, tmp_path):
    np.save(tmp_path / "own.npy", OWN)
    with pytest.raises(datasets.DataFileError, match="test_fraction must be a number between 0 and 1"):
        datasets.load_file(tmp_path / "own.npy", test_fraction=fraction)


def test_too_few_training_rows_for_the_caller(tmp_path):
    np.save(tmp_path / "two.npy", OWN[:2])
    with pytest.raises(datasets.DataFileError, match="gives 1 training rows; at least 2 are needed: add rows or hold"):
        datasets.load_file(tmp_path / "two.npy", min_train=2)
