"""How much memory a command will need, estimated from its sizes before anything is allocated.

A command that would run out of memory should say so at once, in one line naming the option that asks for too
much, not after minutes of allocating (or in NumPy's ``_ArrayMemoryError`` traceback). The estimate counts numbers,
not bytes of Python objects: each need is ``(option, values, fix)``, the option's text as the user typed it
(``"--hidden 10000000"``), how many numbers of the model's dtype it makes the command hold at one time, and what
to do instead. The models' commands write down their needs (:func:`parameter_count` helps with dense layers);
:func:`check_memory` compares their sum with the memory this machine (or, on the CuPy backend, the GPU) has
available.

    check_memory([("--hidden 10000000", 4 * parameter_count([784, 10000000, 20]), "use fewer hidden units")])
"""

from __future__ import annotations

import os

__all__ = ["MemoryEstimateError", "available_memory", "check_memory", "format_bytes", "parameter_count"]

#: Copies of the parameters a training run holds: the parameters, their gradients and an optimiser's two moments
#: (Adam; SGD with momentum holds one), the most any optimiser here keeps.
TRAINING_COPIES = 4
#: Fraction of the available memory a command may plan to use: the estimate leaves out temporaries and Python.
HEADROOM = 0.8


class MemoryEstimateError(ValueError):
    """A command would need more memory than the machine has; the message names the option and a fix."""


def parameter_count(widths, biases: bool = True) -> int:
    """Numbers in the dense layers between consecutive ``widths`` (a weight matrix and, with ``biases``, a bias
    vector each): ``parameter_count([784, 400, 20]) == 784 * 400 + 400 + 400 * 20 + 20``."""
    widths = [int(w) for w in widths]
    return sum(a * b + (b if biases else 0) for a, b in zip(widths[:-1], widths[1:]))


def format_bytes(n: float) -> str:
    """``n`` bytes as '29 GiB', '512 MiB' or '3 KiB' (two significant digits at most below 10)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} bytes"


def _meminfo_available(path="/proc/meminfo"):
    """MemAvailable plus SwapFree of Linux's /proc/meminfo in bytes (a run that fits only with swap is slow, not
    refused), or None where there is no such file or line."""
    fields = {}
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("MemAvailable", "SwapFree"):
                    fields[name] = int(rest.split()[0]) * 1024          # the file counts in kiB
    except (OSError, ValueError, IndexError):
        return None
    return fields["MemAvailable"] + fields.get("SwapFree", 0) if "MemAvailable" in fields else None


def available_memory(backend=None):
    """Bytes of memory available for new arrays: the GPU's free memory on the CuPy backend, else the host's
    (Linux's MemAvailable and free swap, else the free physical pages of ``os.sysconf``); None where it cannot be
    read."""
    if backend is not None and backend.name == "cupy":
        try:
            return int(backend.xp.cuda.runtime.memGetInfo()[0])
        except Exception:   # no usable device: the backend's own error says so where it is used
            return None
    available = _meminfo_available()
    if available is not None:
        return available
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needs, dtype: str = "float32", *, backend=None, available=None) -> int:
    """Refuse, before any allocation, a command whose sizes need more memory than is available.

    Parameters
    ----------
    needs : iterable of (str, int, str)
        ``(option, values, fix)``: the option as typed (``"--hidden 10000000"``), the number of values of ``dtype``
        it makes the command hold at one time, and what to do instead (``"use fewer hidden units"``).
    dtype : {"float32", "float64"}
    backend : refvae.backend.Backend, optional
        Where the arrays will live (the CuPy backend's are on the GPU).
    available : int, optional
        Bytes available (default: :func:`available_memory`); nothing is refused where it cannot be read.

    Returns
    -------
    int
        The estimated bytes.

    Raises
    ------
    MemoryEstimateError
        One line: the option that needs the most, the figure, what this machine has, and the fix.
    """
    itemsize = 8 if str(dtype).endswith("64") else 4
    needs = [(option, int(values) * itemsize, fix) for option, values, fix in needs]
    total = sum(size for _, size, _ in needs)
    if available is None:
        available = available_memory(backend)
    if available is None or total <= HEADROOM * available or not needs:
        return total
    option, size, fix = max(needs, key=lambda need: need[1])
    where = "the GPU has" if backend is not None and backend.name == "cupy" else "this machine has"
    if size > HEADROOM * available:
        what = f"{option} needs about {format_bytes(size)} of memory" + (" alone" if size < total else "")
    else:
        what = f"{' and '.join(o for o, _, _ in needs)} together need about {format_bytes(total)} of memory"
    raise MemoryEstimateError(f"{what} ({where} {format_bytes(available)} available); {fix}")
