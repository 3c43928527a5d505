"""Enumeration of binary vectors, for the exact sums over every state of a small binary layer (an RBM's log Z,
a Helmholtz machine's exact likelihood)."""

from __future__ import annotations

from .backend import get_backend

__all__ = ["binary_states"]


def binary_states(start, stop, n_bits, dtype):
    """All binary vectors with integer codes start..stop-1, (stop - start, n_bits), on the device.

    Bit j of code s is state s's unit j: ``states[s - start, j] = (s >> j) & 1``.
    """
    B = get_backend()
    xp = B.xp
    codes = B.asarray(xp.arange(start, stop, dtype=xp.int64))
    bits = B.asarray(xp.arange(n_bits, dtype=xp.int64))
    return xp.astype((xp.reshape(codes, (-1, 1)) >> xp.reshape(bits, (1, -1))) & 1, B.dtype(dtype))
