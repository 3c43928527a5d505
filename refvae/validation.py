"""Input validation shared by every model: errors that say what was wrong and how to fix it.

(The gradient checks are elsewhere: `refvae/gradcheck.py` and each model's `checks.py`.)"""

from __future__ import annotations

import contextlib

import numpy as np

from .backend import BackendError, get_backend

__all__ = ["DataError", "as_data", "check_finite_params", "check_positive_int", "check_state_array",
           "values_already_checked"]

_VALUES_CHECKED = False


@contextlib.contextmanager
def values_already_checked():
    """Within this block ``as_data`` checks shapes only, not values.

    ``fit`` validates the whole data set once, then trains inside this block, so that no training step
    pays for the value checks (on a GPU each check would wait for the device).
    """
    global _VALUES_CHECKED
    previous, _VALUES_CHECKED = _VALUES_CHECKED, True
    try:
        yield
    finally:
        _VALUES_CHECKED = previous


class DataError(ValueError):
    """Data of the wrong shape or with values a model cannot take."""


def as_data(x, width: int, dtype, *, unit_interval: bool = False, name: str = "x", min_rows: int = 1,
            range_fix: str = "rescale (e.g. pixels / 255) or use likelihood='gaussian'", backend=None):
    """``x`` (NumPy or backend array) as a backend array of shape ``(n, width)`` and the model's dtype.

    Checks, with one device-to-host transfer for the value checks: 2-D, ``width`` columns, at least
    ``min_rows`` rows, all values finite and, with ``unit_interval``, in [0, 1] (``range_fix`` says how to
    fix values outside it). ``backend`` is the model's (the one active when it was built): it must still be the
    active one, and ``x`` must be a host array or an array of it (else a :class:`refvae.backend.BackendError`).
    """
    B = get_backend()
    xp = B.xp
    _refuse_other_backends(x, name, B, backend)
    _refuse_complex_or_masked(x, name)
    shape = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "shape"):
        x = B.asarray(x)
        shape = tuple(x.shape)
    if len(shape) == 1 and shape[0] == width:
        raise DataError(f"{name} has shape {shape}: pass a batch of shape (n, {width}), e.g. {name}[None, :] for one example")
    if len(shape) != 2:
        raise DataError(f"{name} must be 2-D of shape (n, {width}); got shape {shape} (flatten images to rows)")
    if shape[1] != width:
        raise DataError(
            f"{name} has {shape[1]} columns but the model expects {width}: "
            f"pass data of shape (n, {width}) or build the model with x_dim={shape[1]}"
        )
    if shape[0] < min_rows:
        raise DataError(f"{name} has {shape[0]} rows; at least {min_rows} needed")
    x = B.asarray(x, dtype=dtype)
    if _VALUES_CHECKED:
        return x
    finite = xp.all(xp.isfinite(x))
    if unit_interval:
        ok_range = xp.logical_and(xp.min(x) >= 0.0, xp.max(x) <= 1.0)
        both = B.to_numpy(xp.stack([finite, ok_range]))
        finite_ok, range_ok = bool(both[0]), bool(both[1])
    else:
        finite_ok, range_ok = bool(finite), True
    if not finite_ok:
        raise DataError(f"{name} contains NaN or infinite values: clean or impute them before training")
    if not range_ok:
        lo, hi = float(xp.min(x)), float(xp.max(x))
        raise DataError(
            f"{name} has values in [{lo:g}, {hi:g}] but a Bernoulli likelihood needs values in [0, 1]: {range_fix}"
        )
    return x


#: Array libraries whose arrays live on a device: they cannot be mixed with another backend's.
_DEVICE_LIBRARIES = ("cupy", "array_api_strict")


def _describe_backend(backend) -> str:
    return f"backend {backend.name!r}" + (f" (device {backend.device})" if backend.device is not None else "")


def _refuse_other_backends(x, name: str, active, model_backend) -> None:
    """A model lives on the backend it was built under; data reach it as host arrays or arrays of that backend."""
    if model_backend is not None and (model_backend.name, model_backend.device) != (active.name, active.device):
        raise BackendError(f"the model was built on {_describe_backend(model_backend)} but the active one is now "
                           f"{_describe_backend(active)}: call refvae.set_backend({model_backend.name!r}) before using "
                           "it (or refvae.use_backend), or build the model again under the new backend")
    library = type(x).__module__.split(".")[0]
    if library not in _DEVICE_LIBRARIES or library == active.xp.__name__.split(".")[0]:
        return                    # host data (NumPy, lists, ...), or the backend's own (moved to its device)
    device = getattr(x, "device", None)
    where = f"an array of {library}" + (f" on device {device}" if device is not None else "")
    raise BackendError(f"{name} is {where} but the model lives on {_describe_backend(active)}: pass a NumPy array or "
                       f"an array of that backend (refvae.get_backend().asarray({name})), or call "
                       "refvae.set_backend(...) before building the model")


def _refuse_complex_or_masked(x, name: str) -> None:
    """Complex values would lose their imaginary part on conversion, and a masked array's mask would be ignored."""
    import numpy as np

    if isinstance(x, np.ma.MaskedArray):
        raise DataError(f"{name} is a masked array, and refvae would ignore its mask: fill or drop the masked "
                        f"entries first (e.g. {name}.filled(0.0) or {name}[~{name}.mask.any(axis=1)])")
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind == "c":
        raise DataError(f"{name} holds complex numbers: refvae models take real data (pass {name}.real if the "
                        "imaginary part is zero)")


def check_positive_int(value, name: str) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) and not (hasattr(value, "__index__")):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def check_finite_params(params: dict, what: str = "model") -> None:
    """Raise if any parameter array holds NaN or inf (one transfer for all of them)."""
    B = get_backend()
    xp = B.xp
    names = list(params)
    flags = B.to_numpy(xp.stack([xp.all(xp.isfinite(params[k])) for k in names]))
    bad = [k for k, ok in zip(names, flags) if not ok]
    if bad:
        raise ValueError(f"{what} has non-finite parameters in {', '.join(bad)}: the model diverged; "
                         "restart from a checkpoint with a smaller learning rate")


def check_state_array(a, name: str, shape: tuple, *, binary: bool = False, unit_interval: bool = False):
    """A model's state array (from a checkpoint) checked before use: its shape (``None`` in ``shape``: any length
    there), real numbers, finite, each 0 or 1 where ``binary``, in [0, 1] where ``unit_interval``; returns it as
    a host NumPy array. Raises ValueError naming ``name``."""
    host = np.asarray(get_backend().to_numpy(a))
    if host.ndim != len(shape) or any(want is not None and got != want for got, want in zip(host.shape, shape)):
        wanted = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"state {name} has shape {tuple(host.shape)}, this model needs {wanted}")
    if host.dtype.kind not in "biuf":
        raise ValueError(f"state {name} has dtype {host.dtype}, not real numbers")
    if not np.all(np.isfinite(host)):
        raise ValueError(f"state {name} holds non-finite values (NaN or inf)")
    if binary and not np.all((host == 0) | (host == 1)):
        raise ValueError(f"state {name} holds values other than 0 and 1 (binary unit states)")
    if unit_interval and not np.all((host >= 0) & (host <= 1)):
        raise ValueError(f"state {name} holds values outside [0, 1] (it is an average of binary states)")
    return host
