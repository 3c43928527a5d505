"""The array backend: the one module that knows which array library is underneath.

Every model in refvae, rbm and wakesleep is written against the Python array API standard
(https://data-apis.org/array-api/) and takes its namespace ``xp`` from here::

    import refvae
    refvae.set_backend("numpy")      # or "cupy" (GPU), or "strict"
    B = refvae.get_backend()
    xp = B.xp                        # the array namespace
    X = B.asarray(host_array)        # host -> device, once
    rng = B.rng(0)                   # random numbers made on the device
    host = B.to_numpy(X)             # device -> host, for logging, saving, plotting

Backends
--------
``"numpy"``
    NumPy arrays on the CPU (the default).
``"cupy"``
    CuPy arrays on the current CUDA device.
``"strict"``
    ``array_api_strict`` arrays placed on the non-CPU device ``array_api_strict.Device("device1")``.
    This backend exists for testing without a GPU: it refuses implicit conversion to NumPy and
    mixing host arrays into device math, exactly the mistakes that break CuPy.

The default is read from the environment variable ``REFVAE_BACKEND`` (``numpy`` when unset).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "cupy", "strict")

__all__ = ["BACKENDS", "Backend", "BackendError", "Generator", "get_backend", "namespace_of", "set_backend",
           "use_backend"]


class BackendError(RuntimeError):
    """The requested array backend cannot be used here."""


def namespace_of(x):
    """The array namespace of the array ``x``: ``x.__array_namespace__()`` (NumPy >= 2, array_api_strict), or the
    library's module for arrays that do not declare one (CuPy 14's arrays, NumPy 1.x)."""
    get = getattr(x, "__array_namespace__", None)
    if get is not None:
        return get()
    library = type(x).__module__.split(".")[0]
    if library == "cupy":
        import cupy

        return cupy
    if isinstance(x, (np.ndarray, np.generic)):
        return np
    raise TypeError(f"expected an array (NumPy, CuPy or array_api_strict), got {type(x).__name__}")


class Generator:
    """Random numbers made on the backend's device, in the requested dtype.

    A thin, uniform face over ``numpy.random.Generator`` and ``cupy.random.Generator``:
    ``uniform(shape, dtype)``, ``normal(shape, dtype)``, ``permutation(n)`` and ``bernoulli(p)``.
    Streams differ between backends for the same seed; compare deterministic quantities
    across backends, never samples.
    """

    def __init__(self, backend: "Backend", seed, host: bool = False):
        self.backend = backend
        self.seed = seed
        # On the host: numpy always; strict too (its arrays are then placed on its device).
        self.on_host = host or backend.name != "cupy"
        self._device_gen = self._device_perm = None
        if self.on_host:
            self._gen = np.random.default_rng(seed)

    # CuPy's generators are made on first use: each costs a kernel that seeds its states, and an epoch
    # makes several Generators that each use only one kind of draw.
    @property
    def _gen_device(self):
        if self._device_gen is None:
            import cupy

            self._device_gen = cupy.random.default_rng(_fold_seed(self.seed))
        return self._device_gen

    @property
    def _perm_device(self):
        if self._device_perm is None:
            import cupy

            self._device_perm = cupy.random.RandomState(_fold_seed(self.seed))
        return self._device_perm

    def uniform(self, shape, dtype=None):
        """Samples of U[0, 1), an array of ``shape``."""
        if self.on_host:
            return self._place(self._gen.random(shape, dtype=np.dtype(self.backend.dtype_name(dtype))))
        return self._gen_device.random(shape, dtype=self.backend.dtype(dtype))

    def normal(self, shape, dtype=None):
        """Samples of N(0, 1), an array of ``shape``."""
        if self.on_host:
            return self._place(self._gen.standard_normal(shape, dtype=np.dtype(self.backend.dtype_name(dtype))))
        return self._gen_device.standard_normal(shape, dtype=self.backend.dtype(dtype))

    def permutation(self, n: int):
        """A random permutation of ``0 .. n-1`` as an int64 index array on the device."""
        if self.on_host:
            return self._place(self._gen.permutation(n))
        return self._perm_device.permutation(n)

    def _place(self, host_array):
        return host_array if self.backend.name == "numpy" else self.backend.asarray(host_array)

    def bernoulli(self, p):
        """Binary samples with P(1) = p, same shape and dtype as ``p`` (an array on the device)."""
        return self.backend.xp.astype(self.uniform(p.shape, p.dtype) < p, p.dtype)


def _fold_seed(seed) -> int:
    """An int seed from an int or a sequence of ints (for generators that take only one int)."""
    if isinstance(seed, (int, np.integer)):
        return int(seed)
    return int(np.random.SeedSequence(seed).generate_state(1)[0])


@dataclass
class Backend:
    """One array library and one device.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"cupy"`` or ``"strict"``.
    xp : module
        The array namespace (array API standard).
    device : object or None
        The device arrays are placed on (``None`` for NumPy and CuPy's current device).
    """

    name: str
    xp: Any
    device: Any = None
    _host_device: Any = field(default=None, repr=False)
    _array_type: Any = field(default=None, repr=False)

    def __post_init__(self):
        self._array_type = type(self.xp.asarray(0.0))

    # -- dtypes -----------------------------------------------------------------------------
    def dtype_name(self, dtype) -> str:
        """``"float32"`` or ``"float64"`` from a name, a NumPy dtype or a namespace dtype (None -> float32)."""
        if dtype is None:
            return "float32"
        for name in ("float32", "float64", "int64", "bool"):
            if dtype == name or dtype == getattr(self.xp, name) or str(dtype).endswith(name):
                return name
        raise ValueError(f"unsupported dtype {dtype!r}: use 'float32' (the default) or 'float64' (gradient checks)")

    def dtype(self, dtype):
        """The namespace's dtype object for a name such as ``"float32"``."""
        return getattr(self.xp, self.dtype_name(dtype))

    # -- moving data ------------------------------------------------------------------------
    def is_array(self, a) -> bool:
        """True for an array of this backend (on its device)."""
        if self.name == "numpy":
            return isinstance(a, np.ndarray)
        if self.name == "strict":
            return isinstance(a, self._array_type) and a.device == self.device
        return isinstance(a, self.xp.ndarray)

    def asarray(self, a, dtype=None):
        """Host (NumPy, list, scalar) or device array -> array of this backend on its device.

        With ``dtype`` None the dtype of ``a`` is kept (Python floats become float32).
        """
        dt = None if dtype is None else self.dtype(dtype)
        if self.name == "strict":
            if isinstance(a, self._array_type):
                if a.device != self.device:
                    a = a.to_device(self.device)
                return a if dt is None or a.dtype == dt else self.xp.astype(a, dt)
            host = np.asarray(a)
            if dt is None and host.dtype == np.float64 and not isinstance(a, np.ndarray):
                host = host.astype(np.float32)
            return self.xp.asarray(host, dtype=dt, device=self.device)
        if self.name == "cupy":
            return self.xp.asarray(a, dtype=dt)
        return np.asarray(a, dtype=dt)

    def zeros(self, shape, dtype=None):
        """An array of zeros on this backend's device (float32 unless ``dtype`` says otherwise)."""
        if self.device is not None:
            return self.xp.zeros(shape, dtype=self.dtype(dtype), device=self.device)
        return self.xp.zeros(shape, dtype=self.dtype(dtype))

    def eye(self, n: int, dtype=None):
        """The n x n identity on this backend's device."""
        if self.device is not None:
            return self.xp.eye(n, dtype=self.dtype(dtype), device=self.device)
        return self.xp.eye(n, dtype=self.dtype(dtype))

    def to_numpy(self, a, copy: bool = False) -> np.ndarray:
        """Device array -> NumPy host array. Device backends always copy; with NumPy the array itself
        is returned unless ``copy=True`` (use it for snapshots such as checkpoints)."""
        if self.name == "strict":
            if isinstance(a, self._array_type):
                return np.asarray(a.to_device(self._host_device))
            return np.array(a, copy=copy)
        if self.name == "cupy":
            return self.xp.asnumpy(a)
        return np.array(a, copy=True) if copy else np.asarray(a)

    def to_float(self, a) -> float:
        """A 0-d device array -> Python float (this waits for the device: call it outside hot loops)."""
        return float(a)

    def rng(self, seed=0, host: bool = False) -> Generator:
        """A random generator for this backend, seeded with an int or a sequence of ints.

        Numbers are made on the device; with ``host=True`` they are made by NumPy on the host and
        then moved, so a seed gives the same numbers on every backend (used for initialisation).
        """
        return Generator(self, seed, host)

    def synchronize(self) -> None:
        """Wait for the device to finish queued work (for timing)."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def __reduce__(self):
        """Pickled by name (its namespace is a module): unpickled as the active backend if it has that name."""
        return _backend_named, (self.name,)


def _backend_named(name: str) -> Backend:
    current = get_backend()
    return current if current.name == name else _make_backend(name)


def _make_backend(name: str) -> Backend:
    if name == "numpy":
        return Backend("numpy", np)
    if name == "strict":
        try:
            import array_api_strict
        except ImportError as err:
            raise BackendError(
                "backend 'strict' needs the package array-api-strict, which is not installed: "
                "pip install array-api-strict (or pip install 'refvae[test]')"
            ) from err
        return Backend(
            "strict", array_api_strict, array_api_strict.Device("device1"), array_api_strict.Device("CPU_DEVICE")
        )
    if name == "cupy":
        try:
            import cupy
        except ImportError as err:
            raise BackendError(
                "backend 'cupy' needs CuPy, which is not installed: pip install 'refvae[gpu]' "
                "(CUDA 12: cupy-cuda12x; CUDA 13: cupy-cuda13x), or use --backend numpy"
            ) from err
        try:
            n_gpus = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDA driver missing or broken
            raise BackendError(
                f"backend 'cupy': CuPy is installed but no usable CUDA GPU was found ({err}); "
                "check the NVIDIA driver with nvidia-smi, or use --backend numpy"
            ) from err
        if n_gpus == 0:
            raise BackendError("backend 'cupy': CuPy is installed but this machine has no CUDA GPU; use --backend numpy")
        return Backend("cupy", cupy)
    raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


_current: Backend | None = None


def set_backend(name: str) -> Backend:
    """Select the array backend for everything created from now on; returns it.

    Parameters
    ----------
    name : {"numpy", "cupy", "strict"}
    """
    global _current
    if not isinstance(name, str):
        raise BackendError(f"backend name must be a string, one of {', '.join(BACKENDS)}; got {name!r}")
    _current = _make_backend(name.strip().lower())
    return _current


def get_backend() -> Backend:
    """The active backend (from ``REFVAE_BACKEND``, default ``"numpy"``, until ``set_backend`` is called)."""
    global _current
    if _current is None:
        _current = _make_backend(os.environ.get("REFVAE_BACKEND", "numpy").strip().lower() or "numpy")
    return _current


class use_backend:
    """Context manager: ``with use_backend("strict"): ...`` restores the previous backend afterwards."""

    def __init__(self, name: str):
        self.name = name
        self._previous: Backend | None = None

    def __enter__(self) -> Backend:
        global _current
        self._previous = _current
        return set_backend(self.name)

    def __exit__(self, *exc) -> None:
        global _current
        _current = self._previous
