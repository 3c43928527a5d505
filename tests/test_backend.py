"""The backend switch: selection, errors, host/device transfers, generators, and the strict safety net."""

import os
import subprocess
import sys

import numpy as np
import pytest

import refvae
from refvae import BackendError


def test_unknown_backend_names_the_choices():
    with pytest.raises(BackendError, match="unknown backend 'torch'.*numpy, cupy, strict"):
        refvae.set_backend("torch")


def _pythonpath():
    """PYTHONPATH for a child process, where refvae runs uninstalled (benchmarks/gpu_check.sh)."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def test_environment_variable_sets_the_default():
    code = "import refvae; print(refvae.get_backend().name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"REFVAE_BACKEND": "strict", "PATH": "", **_pythonpath()}, check=True)
    assert out.stdout.strip() == "strict"


def test_cupy_missing_says_how_to_fix():
    """Without CuPy: how to install it; with CuPy but no GPU (CuPy's wheel imports anywhere): that no GPU was found;
    either way the way out, --backend numpy."""
    from conftest import CUPY_SKIP

    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match=r"pip install 'refvae\[gpu\]'.*--backend numpy"):
            refvae.set_backend("cupy")
        return
    if CUPY_SKIP is None:
        pytest.skip("a CUDA GPU is usable here")
    with pytest.raises(BackendError, match=r"CuPy is installed but .*GPU.*--backend numpy"):
        refvae.set_backend("cupy")


def test_round_trip_and_dtypes(backend, host_rng):
    a = host_rng.normal(size=(3, 4)).astype(np.float32)
    d = backend.asarray(a)
    assert backend.is_array(d) and not (backend.name != "numpy" and isinstance(d, np.ndarray))
    assert backend.dtype_name(d.dtype) == "float32"
    np.testing.assert_array_equal(backend.to_numpy(d), a)
    assert backend.dtype_name(backend.asarray(a, dtype="float64").dtype) == "float64"
    assert backend.to_float(backend.xp.sum(d)) == pytest.approx(float(a.sum()), rel=1e-6)


def test_generator(backend):
    rng = backend.rng(0)
    u = rng.uniform((1000,), "float32")
    n = rng.normal((1000,), "float64")
    assert backend.dtype_name(u.dtype) == "float32" and backend.dtype_name(n.dtype) == "float64"
    u_host, n_host = backend.to_numpy(u), backend.to_numpy(n)
    assert 0 <= u_host.min() and u_host.max() < 1 and abs(u_host.mean() - 0.5) < 0.05
    assert abs(n_host.mean()) < 0.15 and abs(n_host.std() - 1) < 0.1
    perm = backend.to_numpy(rng.permutation(50))
    assert sorted(perm.tolist()) == list(range(50))
    p = backend.asarray(np.array([0.0, 1.0, 0.5] * 1000, np.float32))
    b = backend.to_numpy(rng.bernoulli(p))
    assert np.all(b[0::3] == 0) and np.all(b[1::3] == 1) and abs(b[2::3].mean() - 0.5) < 0.06
    # same seed, same numbers (on one backend)
    np.testing.assert_array_equal(backend.to_numpy(backend.rng(7).uniform((5,))),
                                  backend.to_numpy(backend.rng(7).uniform((5,))))


def test_strict_backend_refuses_host_mixing():
    """The safety net that stands in for a GPU in CI: implicit host conversion and host/device mixing fail."""
    with refvae.use_backend("strict") as B:
        d = B.asarray(np.ones(3, np.float32))
        with pytest.raises(RuntimeError):
            np.asarray(d)
        with pytest.raises((TypeError, ValueError)):
            d + B.xp.asarray(np.ones(3, np.float32))  # an array on the CPU device
        with pytest.raises(TypeError):
            d * np.float32(2.0)


def test_use_backend_restores_previous():
    before = refvae.get_backend().name
    with refvae.use_backend("strict"):
        assert refvae.get_backend().name == "strict"
    assert refvae.get_backend().name == before


def test_namespace_of_every_backend(backend):
    assert refvae.backend.namespace_of(backend.zeros((2,))) is backend.xp


def test_namespace_of_refuses_a_non_array():
    with pytest.raises(TypeError, match="expected an array.*got list"):
        refvae.backend.namespace_of([1.0, 2.0])
