"""Shared fixtures: every backend-dependent test runs on numpy, strict and (where a GPU is present) cupy."""

import os

import numpy as np
import pytest

import refvae

os.environ.setdefault("MPLBACKEND", "Agg")


def _cupy_reason():
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'refvae[gpu]')"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "no CUDA GPU on this machine"
    except Exception as err:  # driver missing
        return f"no usable CUDA GPU ({type(err).__name__})"
    return None


CUPY_SKIP = _cupy_reason()
BACKENDS = ["numpy", "strict", pytest.param("cupy", marks=pytest.mark.skipif(CUPY_SKIP is not None,
                                                                            reason=str(CUPY_SKIP)))]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The active backend for one test; the previous one is restored afterwards."""
    with refvae.use_backend(request.param) as B:
        yield B


@pytest.fixture
def numpy_backend():
    with refvae.use_backend("numpy") as B:
        yield B


@pytest.fixture
def host_rng():
    return np.random.default_rng(12345)


def pytest_collection_modifyitems(config, items):
    """Mark every CuPy case ``cupy`` (a ``cupy`` parameter, or a test file about CuPy), so that the GPU check selects
    them with ``-m cupy``: the NumPy and strict cases have already run in CI."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "cupy" in [str(v) for v in params.values()] or "cupy" in item.path.name:
            item.add_marker(pytest.mark.cupy)


def recording_rng(backend, seed):
    """A generator of ``backend`` whose every Bernoulli draw is recorded on the host as (p, sample): tests hold
    each draw to the equation it samples."""
    gen, draws = backend.rng(seed), []
    draw = gen.bernoulli

    def bernoulli(p):
        sample = draw(p)
        draws.append((backend.to_numpy(p), backend.to_numpy(sample)))
        return sample

    gen.bernoulli = bernoulli
    return gen, draws
